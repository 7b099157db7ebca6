"""The producer side of the transport against real redis-servers: many threads on one
bus, fork(), TLS, ACL users, and what fire() does when Redis is down, restarting or
frozen."""

from __future__ import annotations

import collections
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.errors import BusUnavailable, LightbusError, TransportError
from lightbus_sync.testing.redis_server import RedisServer
from lightbus_sync.testing.tls import TlsFiles, TlsToolMissing, make_tls_files
from lightbus_sync.wire import decode_entry

STREAM = "core_transport.*:stream"


class CoreTransportApi(Api):
    happened = Event(parameters=[Parameter("worker", int), Parameter("seq", int), Parameter("text", str)])

    class Meta:
        name = "core_transport"


def _settings(fire_timeout: float = 5, socket_timeout: float = 5) -> dict:
    return {"apis": {"default": {"event_fire_timeout": fire_timeout,
                                 "event_transport": {"redis": {"socket_timeout": socket_timeout}}}}}


@pytest.fixture
def make_bus():
    buses = []

    def make(url: str, **settings):
        bus = lightbus_sync.create(redis_url=url, service_name="core-transport",
                                   config=_settings(**settings) if settings else None)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def _entries(client: redis.Redis, stream: str = STREAM) -> dict[str, tuple[str, dict]]:
    """stream id -> (event id, parameters) of every entry (each must decode)."""
    result = {}
    for entry_id, fields in client.xrange(stream):
        raw = decode_entry(fields)
        result[entry_id.decode()] = (raw.id, raw.parameters)
    return result


# --- threads and processes -------------------------------------------------------------


def test_one_bus_shared_by_16_threads(make_bus, redis_url, redis_client):
    bus = make_bus(redis_url)
    threads_count, per_thread = 16, 200
    start = threading.Barrier(threads_count)
    fired: dict[int, list] = collections.defaultdict(list)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait()
            event = bus.core_transport.happened
            for seq in range(per_thread):
                fired[worker].append(event.fire(worker=worker, seq=seq, text=f"w{worker}-s{seq}" * (seq % 5)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    entries = _entries(redis_client)
    messages = [m for ms in fired.values() for m in ms]
    assert len(entries) == len(messages) == threads_count * per_thread
    assert len({event_id for event_id, _ in entries.values()}) == len(entries)  # unique event ids
    for message in messages:  # each returned message is exactly its own entry
        event_id, parameters = entries[message.stream_id]
        assert event_id == message.id and parameters == dict(message.kwargs)
    for worker in range(threads_count):
        seqs = [p["seq"] for _, p in entries.values() if p["worker"] == worker]
        assert seqs == list(range(per_thread))  # per thread: all there, in order
        assert all(p["text"] == f"w{worker}-s{p['seq']}" * (p["seq"] % 5)
                   for _, p in entries.values() if p["worker"] == worker)


def test_fire_across_fork(make_bus, redis_url, redis_client):
    bus = make_bus(redis_url)
    before = bus.core_transport.happened.fire(worker=0, seq=1, text="parent before fork")
    pid = os.fork()
    if pid == 0:  # the child: same bus object, inherited pool
        code = 1
        try:
            child = bus.core_transport.happened.fire(worker=1, seq=1, text="child")
            many = bus.core_transport.happened.fire_many([{"worker": 1, "seq": 2, "text": "child many"}])
            code = 0 if child.stream_id and many[0].stream_id else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    after = bus.core_transport.happened.fire(worker=0, seq=2, text="parent after fork")
    entries = _entries(redis_client)
    assert [(p["worker"], p["seq"], p["text"]) for _, p in entries.values()] == [
        (0, 1, "parent before fork"), (1, 1, "child"), (1, 2, "child many"), (0, 2, "parent after fork")]
    assert entries[before.stream_id][0] == before.id and entries[after.stream_id][0] == after.id
    assert len({event_id for event_id, _ in entries.values()}) == 4


# --- TLS -------------------------------------------------------------------------------

SYSTEM_REDIS = "/usr/bin/redis-server"


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    try:
        return make_tls_files(tmp_path / "tls")
    except TlsToolMissing as exc:
        pytest.skip(str(exc))


def _supports_tls(executable: str) -> bool:
    """A Redis built without TLS refuses ``tls-port`` as a bad directive. (The second,
    made-up directive stops a TLS-capable one right after parsing.)"""
    result = subprocess.run([executable, "--tls-port", "0", "--port", "0", "--no-such-directive", "x"],
                            capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert "no-such-directive" in output or "tls-port" in output, output  # it did parse
    return "'tls-port" not in output


def test_fire_over_tls_with_the_ca_in_the_url(make_bus, tls_files):
    if not os.path.exists(SYSTEM_REDIS) or not _supports_tls(SYSTEM_REDIS):
        pytest.skip(f"{SYSTEM_REDIS} is missing or built without TLS support")
    with RedisServer(executable=SYSTEM_REDIS, tls=tls_files) as server:  # TLS only: port is the TLS port
        url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={tls_files.ca_cert}"
        message = make_bus(url).core_transport.happened.fire(worker=1, seq=1, text="over TLS")
        with server.client() as client:
            assert _entries(client)[message.stream_id] == (message.id, {"worker": 1, "seq": 1, "text": "over TLS"})
        plain = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2, socket_connect_timeout=2,
                            retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.ConnectionError):  # the port speaks TLS only
            plain.ping()
        plain.close()
        # Without the CA the certificate does not verify: a clear error at once, no 5 s of retries.
        started = time.monotonic()
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            make_bus(f"rediss://127.0.0.1:{server.port}/0").core_transport.happened.fire(worker=1, seq=2, text="x")
        assert time.monotonic() - started < 4


# --- ACL users -------------------------------------------------------------------------

PASSWORD = "s3cret-Pa55word"


def test_fire_as_an_acl_user(make_bus, redis_server, redis_client):
    redis_client.execute_command("ACL", "SETUSER", "core_writer", "reset", "on", f">{PASSWORD}", "~*", "+@all")
    try:
        url = f"redis://core_writer:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
        message = make_bus(url).core_transport.happened.fire(worker=1, seq=1, text="acl")
        assert _entries(redis_client)[message.stream_id][0] == message.id
        clients = redis_client.client_list()
        assert any(c.get("user") == "core_writer" for c in clients)
    finally:
        redis_client.execute_command("ACL", "DELUSER", "core_writer")


def test_a_wrong_password_fails_at_once_and_never_shows_the_password(make_bus, redis_server, redis_client):
    redis_client.execute_command("ACL", "SETUSER", "core_writer", "reset", "on", f">{PASSWORD}", "~*", "+@all")
    try:
        url = f"redis://core_writer:wrong-{PASSWORD}@127.0.0.1:{redis_server.port}/0"
        bus = make_bus(url, fire_timeout=5)
        started = time.monotonic()
        with pytest.raises(TransportError) as excinfo:
            bus.core_transport.happened.fire(worker=1, seq=1, text="x")
        assert time.monotonic() - started < 2  # not retried for event_fire_timeout
        message = str(excinfo.value)
        assert PASSWORD not in message and PASSWORD not in repr(excinfo.value)
        assert f"redis://core_writer:***@127.0.0.1:{redis_server.port}/0" in message
        assert excinfo.value.__cause__ is None or PASSWORD not in str(excinfo.value.__cause__)
        assert redis_client.dbsize() == 0
    finally:
        redis_client.execute_command("ACL", "DELUSER", "core_writer")


def test_an_acl_denial_is_a_transport_error_naming_the_command(make_bus, redis_server, redis_client):
    redis_client.execute_command("ACL", "SETUSER", "core_reader", "reset", "on", f">{PASSWORD}", "~*", "+@read",
                                 "+ping", "+hello", "+client")
    try:
        bus = make_bus(f"redis://core_reader:{PASSWORD}@127.0.0.1:{redis_server.port}/0")
        with pytest.raises(TransportError, match="xadd") as excinfo:
            bus.core_transport.happened.fire(worker=1, seq=1, text="x")
        assert PASSWORD not in str(excinfo.value) and "core_reader:***@" in str(excinfo.value)
        assert redis_client.dbsize() == 0
    finally:
        redis_client.execute_command("ACL", "DELUSER", "core_reader")


# --- Redis down, restarting, frozen ------------------------------------------------------


def test_redis_down_raises_bus_unavailable_within_the_fire_timeout(make_bus, fresh_redis_server):
    url = f"redis://someone:{PASSWORD}@127.0.0.1:{fresh_redis_server.port}/0"
    with fresh_redis_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "someone", "on", f">{PASSWORD}", "~*", "+@all")
    bus = make_bus(url, fire_timeout=2)
    bus.core_transport.happened.fire(worker=1, seq=1, text="up")  # connected, pool warm
    fresh_redis_server.kill()
    started = time.monotonic()
    with pytest.raises(BusUnavailable) as excinfo:
        bus.core_transport.happened.fire(worker=1, seq=2, text="down")
    elapsed = time.monotonic() - started
    assert 2 <= elapsed < 2 + 3
    message = str(excinfo.value)
    assert f"redis://someone:***@127.0.0.1:{fresh_redis_server.port}/0" in message
    assert PASSWORD not in message and "gave up after" in message
    assert isinstance(excinfo.value, LightbusError) and isinstance(excinfo.value, ConnectionError)


@pytest.mark.parametrize("fresh_redis_server", [True], indirect=True)  # appendonly: data survives
def test_an_event_fired_during_a_short_outage_is_written_with_its_id(make_bus, fresh_redis_server):
    bus = make_bus(fresh_redis_server.url, fire_timeout=5)
    first = bus.core_transport.happened.fire(worker=1, seq=1, text="before")
    fresh_redis_server.kill()
    timer = threading.Timer(2.0, fresh_redis_server.start)
    timer.start()
    try:
        started = time.monotonic()
        during = bus.core_transport.happened.fire(worker=1, seq=2, text="during the outage")
        elapsed = time.monotonic() - started
    finally:
        timer.join(15)
    assert elapsed >= 1.5  # it really waited for the server
    after = bus.core_transport.happened.fire(worker=1, seq=3, text="after")
    with fresh_redis_server.client() as client:
        entries = _entries(client)
    assert entries[first.stream_id][0] == first.id  # survived the restart (AOF)
    assert entries[during.stream_id] == (during.id, {"worker": 1, "seq": 2, "text": "during the outage"})
    assert entries[after.stream_id][0] == after.id
    assert [event_id for event_id, _ in entries.values()].count(during.id) == 1
    assert len(entries) == 3


def test_frozen_redis_is_retried_then_the_event_is_written(make_bus, fresh_redis_server):
    """Paused longer than the socket timeout: the attempt times out, is retried, and
    succeeds once Redis resumes. A timed-out attempt may still land: every copy carries
    the same event id (consumers de-duplicate on it)."""
    bus = make_bus(fresh_redis_server.url, fire_timeout=6, socket_timeout=0.5)
    bus.core_transport.happened.fire(worker=1, seq=1, text="warm")
    fresh_redis_server.pause(1.5)
    started = time.monotonic()
    message = bus.core_transport.happened.fire(worker=1, seq=2, text="while frozen")
    assert time.monotonic() - started >= 1.0  # it did wait for the freeze
    with fresh_redis_server.client() as client:
        entries = _entries(client)
    assert entries[message.stream_id] == (message.id, {"worker": 1, "seq": 2, "text": "while frozen"})
    copies = [sid for sid, (event_id, p) in entries.items() if p["seq"] == 2]
    assert copies and all(entries[sid][0] == message.id for sid in copies)


def test_frozen_longer_than_the_fire_timeout_raises_never_silently_loses(make_bus, fresh_redis_server):
    bus = make_bus(fresh_redis_server.url, fire_timeout=1, socket_timeout=0.5)
    bus.core_transport.happened.fire(worker=1, seq=1, text="warm")
    fresh_redis_server.pause(3)
    started = time.monotonic()
    with pytest.raises(BusUnavailable, match="TimeoutError"):
        bus.core_transport.happened.fire(worker=1, seq=2, text="while frozen")
    assert time.monotonic() - started < 1 + 0.5 + 3  # fire timeout + one socket timeout + margin
    fresh_redis_server.resume()
    # the bus recovers by itself once Redis answers again
    message = bus.core_transport.happened.fire(worker=1, seq=3, text="after")
    with fresh_redis_server.client() as client:
        assert _entries(client)[message.stream_id][0] == message.id


def test_an_error_reply_in_a_pipelined_write_raises_and_leaves_the_connection_in_step(
        make_bus, redis_url, redis_client):
    bus = make_bus(redis_url)
    transport = bus.transport_for("core_transport")
    redis_client.set("not-a-stream", "x")
    fields = {"id": "e1", "api_name": "core_transport", "event_name": "happened", "version": "1", ":seq": "1"}
    with pytest.raises(TransportError, match="WRONGTYPE"):
        transport.add_events([(STREAM, fields), ("not-a-stream", fields), (STREAM, fields)], None, 2)
    # The replies after the error were read: the pooled connection answers the next
    # command with its own reply, not a stale one.
    assert redis_client.xlen(STREAM) == 2
    entry_id = transport.add_event(STREAM, fields, 10, 2)
    assert redis_client.xrange(STREAM)[-1][0].decode() == entry_id
    with pytest.raises(TransportError, match="WRONGTYPE"):
        transport.add_event("not-a-stream", fields, None, 2)
    ids = transport.add_events([(STREAM, fields), (STREAM, fields)], None, 2)
    assert [e[0].decode() for e in redis_client.xrange(STREAM)[-2:]] == ids
