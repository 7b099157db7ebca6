"""Fault scenarios of trimming and of entries that fail before their handler: real runner
processes, a real redis-server. lost counts events neither handled, nor dead-lettered,
nor reported lost by a runner: it must be 0 in each."""

from __future__ import annotations

import json
import time

import pytest

from lightbus_sync.testing.redis_server import RedisServer

from .harness import GROUP, STREAM, Producer, Runners, account, dead_letters, dead_seqs, pending_count, wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def server(tmp_path):
    with RedisServer(directory=tmp_path / "redis", appendonly=True) as srv:
        yield srv


def _settle(runners: Runners, client, expected: set[int], timeout: float, since: float | None = None) -> float:
    started = time.monotonic() if since is None else since

    def done() -> bool:
        handled = runners.handled()
        dead = dead_seqs(client)
        return all(handled[s] or s in dead for s in expected) and pending_count(client) == 0

    wait_for(done, timeout, interval=0.5)
    return time.monotonic() - started


def test_a_backlog_over_the_old_cap_with_the_default_config(server, tmp_path):
    """The service is down while 110,000 events are fired (over Lightbus's default cap of
    100,000): with the default config nothing is trimmed before the group has read it."""
    client = server.client()
    client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)  # the service existed before
    client.xgroup_createconsumer(STREAM, GROUP, "runner-0")
    producer = Producer(server.url)
    producer.fire_batches(0, 110_000)
    assert client.xlen(STREAM) == 110_000
    runners = Runners(server, tmp_path, count=2).start()
    recover = _settle(runners, client, set(producer.fired), timeout=240)
    runners.stop()
    result = account("backlog of 110k, default config", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover)
    producer.close()
    assert result.lost == 0 and result.pending_left == 0, result


def test_a_deeply_nested_json_entry_is_dead_lettered_once(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=1, env={"FAULT_MAX_DELIVERIES": "3"}).start()
    producer = Producer(server.url)
    producer.fire_range(0, 100)
    deep = "[" * 100_000 + "]" * 100_000
    client.xadd(STREAM, {"id": "deep", "api_name": "faults", "event_name": "work", "version": "1", ":seq": deep})
    producer.fire_range(100, 200)
    recover = _settle(runners, client, set(producer.fired), timeout=60)
    assert wait_for(lambda: len(dead_letters(client)) == 1, 20)
    runners.stop()
    result = account("deeply nested JSON entry", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover, fired=len(producer.fired) + 1)
    producer.close()
    [dead] = dead_letters(client)
    assert dead[b"dl:reason"] == b"malformed"
    assert b"RecursionError" in dead[b"dl:error"]
    assert dead[b":seq"] == deep.encode()
    assert not runners.exits, runners.exits
    assert result.lost == 0 and result.pending_left == 0, result
