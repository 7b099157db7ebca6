"""The runner's core paths on a real Redis Cluster (the session's ``redis_cluster``): one
listener over three APIs whose streams are on the three shards; retries, dead letters
(the Lua script's keys ``<stream>``, ``{<stream>}:dead``, ``{<stream>}:attempts`` share
a slot), reclaim of a kill -9'd process's entries, lease renewal."""

from __future__ import annotations

import threading
import time

import pytest

import lightbus_sync
from runner_apps.cluster_api import SHARD_APIS
from runner_apps.harness import fast_config, run_process, wait_until  # noqa: F401 (fixture)

STREAMS = list(SHARD_APIS.values())


@pytest.fixture
def make_bus(cluster_url):
    buses = []

    def make(process_name: str = "p1", service_name: str = "clrt", **redis) -> lightbus_sync.Bus:
        bus = lightbus_sync.create(redis_url=cluster_url, service_name=service_name, process_name=process_name,
                                   config=fast_config(redis))
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def pending(client, stream: str, group: str) -> int:
    return int(client.xpending(stream, group)["pending"])


def jobs(bus):
    return [bus.api(name).job for name in SHARD_APIS]


def test_the_three_streams_are_on_the_three_shards(redis_cluster, cluster_url):
    assert {redis_cluster.master_of_key(s) for s in STREAMS} == set(redis_cluster.masters())


def test_retry_then_success_and_dead_letter_after_max_deliveries(make_bus, cluster_client, redis_cluster):
    """n=1 fails twice then succeeds (runs 1-3, Redis counting the deliveries); n=2
    always fails and is dead-lettered after max_deliveries=3 runs, into
    {<stream>}:dead on its stream's shard. On every shard."""
    bus = make_bus()
    runs: dict[tuple[str, int], list[int]] = {}
    lock = threading.Lock()

    def handle(event_message, n, sleep):
        with lock:
            runs.setdefault((event_message.api_name, n), []).append(event_message.delivery_count)
            count = len(runs[(event_message.api_name, n)])
        if n == 2 or (n == 1 and count < 3):
            raise RuntimeError(f"failure {count} of {event_message.api_name} {n}")

    bus.listen_many(jobs(bus), handle, listener_name="flaky", max_deliveries=3, retry_backoff=(0.05, 0.1))
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        for job in jobs(bus):
            job.fire_many([{"n": 0}, {"n": 1}, {"n": 2}])
        wait_until(lambda: runner.stats.get("dead_lettered") == 3 and runner.stats.get("processed") == 6, 20,
                   what="3 dead letters and 6 handled")
        wait_until(lambda: all(pending(cluster_client, s, "clrt-flaky") == 0 for s in STREAMS), 5, what="acked")
    for name, stream in SHARD_APIS.items():
        assert runs[(name, 0)] == [1]
        assert runs[(name, 1)] == [1, 2, 3]
        assert runs[(name, 2)] == [1, 2, 3]
        dead = "{" + stream + "}:dead"
        assert redis_cluster.master_of_key(dead) == redis_cluster.master_of_key(stream)
        [(_, fields)] = cluster_client.xrange(dead)
        assert fields[b"dl:group"] == b"clrt-flaky" and fields[b":n"] == b"2"
        assert fields[b"dl:reason"] == b"max deliveries reached"
        assert not cluster_client.exists("{" + stream + "}:attempts")  # counters dropped on settling
    assert runner.stats.get("retried") == 3 * 4


def test_entries_of_a_killed_process_are_reclaimed_on_every_shard(
        run_process, redis_server, cluster_url, cluster_client, make_bus):
    """A ``lightbus-sync run`` process holds entries of the three shards' streams in its
    blocked handlers and is killed -9; an in-process runner of the same service claims
    them after the acknowledgement timeout and handles them (delivery 2)."""
    record = redis_server.client()
    redis_server.flushall()
    victim = run_process("cluster_bus", cluster_url, "--process-name", "victim", "--threads", "6",
                         config=fast_config(), env={"HANDLER_MODE": "block", "TEST_LABEL": "victim",
                                                    "RECORD_URL": redis_server.url})
    victim.wait_ready(30)
    producer = make_bus("producer", service_name="producer")
    for job in jobs(producer):
        job.fire_many([{"n": 0}, {"n": 1}])
    wait_until(lambda: record.llen("started") == 6, 15, what="the victim holds six entries")
    victim.kill9()
    for stream in STREAMS:
        rows = cluster_client.xpending_range(stream, "clrt-jobs", "-", "+", 10)
        assert [(r["consumer"], r["times_delivered"]) for r in rows] == [(b"victim", 1)] * 2

    rescuer_bus = make_bus("rescuer")
    seen: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def handle(event_message, n, sleep):
        with lock:
            seen.append((event_message.api_name, n, event_message.delivery_count))

    rescuer_bus.listen_many(jobs(rescuer_bus), handle, listener_name="jobs")
    with rescuer_bus.listening() as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: len(seen) == 6, 15, what="the rescuer handles the six")
        wait_until(lambda: all(pending(cluster_client, s, "clrt-jobs") == 0 for s in STREAMS), 5, what="acked")
    assert sorted(seen) == sorted((name, n, 2) for name in SHARD_APIS for n in (0, 1))
    assert runner.stats.get("reclaimed") == 6
    record.close()


def test_lease_renewal_keeps_slow_handlers_from_running_twice(make_bus, cluster_client):
    """Handlers run for three acknowledgement timeouts while a second runner of the
    group scans for stale entries, on the three shards: each event runs once."""
    calls: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    buses = [make_bus(name, acknowledgement_timeout=0.5, reclaim_interval=0.1) for name in ("p1", "p2")]
    runners = []

    def slow(process_name):
        def handle(event_message, n, sleep):
            with lock:
                calls.append((event_message.api_name, n, process_name))
            time.sleep(1.6)
        return handle

    try:
        for bus in buses:
            bus.listen_many(jobs(bus), slow(bus.process_name), listener_name="slow")
            runners.append(bus.start_listener_thread(threads=3))
        assert all(r.wait_until_ready(10) for r in runners)
        for job in jobs(buses[0]):
            job.fire(n=1)
        wait_until(lambda: all(pending(cluster_client, s, "clrt-slow") == 0 for s in STREAMS) and len(calls) >= 3,
                   15, what="all three acked")
        time.sleep(0.8)  # past another acknowledgement timeout: nothing comes back
        assert sorted((api, n) for api, n, _ in calls) == sorted((name, 1) for name in SHARD_APIS)
        assert sum(r.stats.get("reclaimed") for r in runners) == 0
        assert sum(r.stats.get("leases_lost") for r in runners) == 0
    finally:
        for runner in runners:
            runner.stop(10)


def test_blocking_reads_on_several_shards_do_not_wait_for_each_other(make_bus):
    """block_ms=2000 and one listener over three shards: each shard has its own blocking
    read, so an event on any of them is handled at once, not after the others' BLOCK."""
    bus = make_bus(block_ms=2000)
    latencies: list[float] = []
    fired_at: dict[str, float] = {}

    def handle(event_message, n, sleep):
        latencies.append(time.monotonic() - fired_at[event_message.api_name])

    bus.listen_many(jobs(bus), handle, listener_name="quick")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        time.sleep(0.3)  # every read loop is blocked in XREADGROUP now
        for count, job in enumerate(jobs(bus) * 2, start=1):
            fired_at[job.definition.api_name] = time.monotonic()
            job.fire(n=1)
            wait_until(lambda: len(latencies) == count, 5, what=f"event {count} handled")
            time.sleep(0.25)
    assert max(latencies) < 0.5, latencies
