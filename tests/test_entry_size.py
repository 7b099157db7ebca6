"""max_entry_size: fire() refuses an oversized event; a listener dead-letters one."""

import json
import threading
import time

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, InvalidParameterValue, Parameter
from lightbus_sync.runner import dead_letter_stream


class UploadApi(Api):
    uploaded = Event(parameters=(Parameter("name", str), Parameter("body", str)))

    class Meta:
        name = "size_test.uploads"


STREAM = "size_test.uploads.*:stream"
QUICK = {"apis": {"default": {"event_transport": {"redis": {
    "max_entry_size": 10_000, "acknowledgement_timeout": 1, "reclaim_interval": 0.2, "block_ms": 100}}}}}


def test_fire_refuses_an_event_over_the_limit_and_names_the_largest_parameter(redis_url, redis_client):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="uploads", config=QUICK)
    try:
        bus.size_test.uploads.uploaded.fire(name="small", body="x" * 9_000)
        with pytest.raises(InvalidParameterValue, match=r"over max_entry_size .*'body'"):
            bus.size_test.uploads.uploaded.fire(name="big", body="x" * 10_000)
        assert redis_client.xlen(STREAM) == 1
    finally:
        bus.close()


def test_no_limit_when_zero(redis_url, redis_client):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="uploads", config={
        "apis": {"default": {"event_transport": {"redis": {"max_entry_size": 0}}}}})
    try:
        bus.size_test.uploads.uploaded.fire(name="big", body="x" * 2_000_000)
        assert redis_client.xlen(STREAM) == 1
    finally:
        bus.close()


def test_listener_dead_letters_an_oversized_entry_and_handles_the_rest(redis_url, redis_client):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="uploads", config=QUICK)
    seen = []
    done = threading.Event()

    def handle(name, body):
        seen.append(name)
        if name == "after":
            done.set()

    bus.size_test.uploads.uploaded.listen(handle, listener_name="store", since="0")
    meta = {"id": "e1", "api_name": "size_test.uploads", "event_name": "uploaded", "version": "1"}
    redis_client.xadd(STREAM, {**meta, ":name": '"before"', ":body": '"ok"'})
    big_id = redis_client.xadd(STREAM, {**meta, ":name": '"huge"', ":body": json.dumps("y" * 50_000)})
    redis_client.xadd(STREAM, {**meta, ":name": '"after"', ":body": '"ok"'})
    try:
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            assert done.wait(10)
            time.sleep(0.3)
        assert seen == ["before", "after"]
        dead = redis_client.xrange(dead_letter_stream(STREAM))
        assert [d[1][b"dl:original_id"] for d in dead] == [big_id]
        assert dead[0][1][b"dl:reason"].startswith(b"too large")
        assert dead[0][1][b":body"] == json.dumps("y" * 50_000).encode()  # kept whole for replay
    finally:
        bus.close()
