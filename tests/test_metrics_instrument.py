"""lightbus_sync.metrics.instrument in-process, with its own registry, on real Redis:
counters from the bus's and the runner's observers;
gauges collected from the runner and from Redis (XINFO GROUPS) at scrape time."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, Optional

import pytest
from prometheus_client import CollectorRegistry

import lightbus_sync
from lightbus_sync import Api, ConfigurationError, Event, Parameter
from lightbus_sync.metrics import BusMetrics, instrument
from lightbus_sync.runner import Runner
from lightbus_sync.testing import RedisServer

FAST = {"apis": {"default": {"event_transport": {"redis": {
    "acknowledgement_timeout": 1, "reclaim_interval": 0.2, "block_ms": 100,
}}}}}
STREAM = "metrics_in.orders.*:stream"


class MetricsInApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int),))

    class Meta:
        name = "metrics_in.orders"


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}", pytrace=False)
        time.sleep(0.02)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> Optional[float]:
    return registry.get_sample_value(name, labels)


@pytest.fixture
def make_bus() -> Iterator[Callable[..., lightbus_sync.Bus]]:
    buses = []

    def make(url: str, service_name: str = "msvc") -> lightbus_sync.Bus:
        bus = lightbus_sync.create(redis_url=url, service_name=service_name, process_name="m-1", config=FAST)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def test_counters_and_durations_follow_what_the_runner_does(make_bus, redis_url):
    bus = make_bus(redis_url)
    handled: list[int] = []
    bus.metrics_in.orders.order_placed.listen(lambda order_id: handled.append(order_id), listener_name="ok")

    def always_fails(order_id):
        raise RuntimeError("nope")

    bus.metrics_in.orders.order_placed.listen(always_fails, listener_name="flaky", max_deliveries=2,
                                              retry_backoff=(0.0, 0.0))
    registry = CollectorRegistry()
    runner = Runner(bus, threads=4)
    metrics = instrument(bus, runner, registry=registry)
    assert isinstance(metrics, BusMetrics)
    # Known listeners appear at 0 before anything happens.
    assert sample(registry, "lightbus_sync_events_processed_total", listener="flaky", outcome="ok") == 0
    assert sample(registry, "lightbus_sync_handler_duration_seconds_count", listener="ok") == 0
    for name in ("dead_lettered", "retried", "reclaimed"):
        for listener in ("ok", "flaky"):
            assert sample(registry, f"lightbus_sync_events_{name}_total", listener=listener) == 0
    with runner:
        assert runner.wait_until_ready(10)
        bus.metrics_in.orders.order_placed.fire(order_id=1)
        bus.metrics_in.orders.order_placed.fire_many([{"order_id": 2}, {"order_id": 3}])
        wait_until(lambda: sample(registry, "lightbus_sync_events_dead_lettered_total", listener="flaky") == 3,
                   what="3 dead letters")
        wait_until(lambda: sample(registry, "lightbus_sync_events_processed_total", listener="ok", outcome="ok") == 3)
    assert sorted(handled) == [1, 2, 3]
    assert sample(registry, "lightbus_sync_events_fired_total", api="metrics_in.orders", event="order_placed") == 3
    # flaky: delivery 1 fails (retry), delivery 2 fails (max_deliveries reached: dead letter)
    assert sample(registry, "lightbus_sync_events_processed_total", listener="flaky", outcome="error") == 6
    assert sample(registry, "lightbus_sync_events_processed_total", listener="flaky", outcome="ok") == 0
    assert sample(registry, "lightbus_sync_events_processed_total", listener="ok", outcome="error") == 0
    assert sample(registry, "lightbus_sync_events_retried_total", listener="flaky") == 3
    assert sample(registry, "lightbus_sync_events_retried_total", listener="ok") == 0
    assert sample(registry, "lightbus_sync_events_dead_lettered_total", listener="ok") == 0
    # The 3 retries were claimed by the reclaimer, but they are retries, not reclaims.
    assert sample(registry, "lightbus_sync_events_reclaimed_total", listener="flaky") == 0
    assert sample(registry, "lightbus_sync_events_reclaimed_total", listener="ok") == 0
    assert sample(registry, "lightbus_sync_handler_duration_seconds_count", listener="ok") == 3
    assert sample(registry, "lightbus_sync_handler_duration_seconds_count", listener="flaky") == 6
    assert sample(registry, "lightbus_sync_handler_duration_seconds_bucket", listener="ok", le="+Inf") == 3
    # runner.stats counts too (another observer)
    assert runner.stats.get("dead_lettered") == 3 and runner.stats.as_dict()["retried"] == 3


@pytest.mark.parametrize("server_fixture", ["redis62_server", "redis7_server"])
def test_in_flight_pending_and_lag_gauges_are_read_at_scrape_time(make_bus, request, server_fixture):
    server: RedisServer = request.getfixturevalue(server_fixture)
    server.flushall()
    has_lag = server.version[0] >= 7
    bus = make_bus(server.url)
    release = threading.Event()
    bus.metrics_in.orders.order_placed.listen(lambda order_id: release.wait(20), listener_name="slow",
                                              concurrency=1)
    registry = CollectorRegistry()
    runner = Runner(bus)
    instrument(bus, runner, registry=registry)
    labels = {"listener": "slow", "group": "msvc-slow", "stream": STREAM}

    def gauges() -> tuple[Optional[float], Optional[float], Optional[float]]:
        return (sample(registry, "lightbus_sync_events_in_flight", listener="slow"),
                sample(registry, "lightbus_sync_group_pending", **labels),
                sample(registry, "lightbus_sync_group_lag", **labels))

    try:
        runner.start()
        assert runner.wait_until_ready(10)
        assert gauges() == (0, 0, 0 if has_lag else None)
        bus.metrics_in.orders.order_placed.fire_many([{"order_id": i} for i in range(10)])
        wait_until(lambda: (gauges()[0] or 0) >= 1, what="an entry in flight")
        time.sleep(0.3)  # let the reader take what the lane has room for
        in_flight, pending, lag = gauges()
        assert 1 <= in_flight <= pending < 10  # the handler is stuck: the rest waits in Redis
        if has_lag:
            assert pending + lag == 10  # nothing acked yet: every entry is pending or not read
        else:
            assert lag is None  # Redis 6.2 cannot tell
        release.set()
        wait_until(lambda: gauges()[:2] == (0, 0), what="everything acked")
        if has_lag:
            assert gauges()[2] == 0
    finally:
        release.set()
        runner.stop(5)


def test_a_scrape_survives_redis_being_down(make_bus, fresh_redis_server):
    bus = make_bus(fresh_redis_server.url)
    bus.metrics_in.orders.order_placed.listen(lambda order_id: None, listener_name="ok")
    registry = CollectorRegistry()
    runner = Runner(bus)
    instrument(bus, runner, registry=registry)
    with runner:
        assert runner.wait_until_ready(10)
        assert sample(registry, "lightbus_sync_group_pending", listener="ok", group="msvc-ok", stream=STREAM) == 0
        fresh_redis_server.kill()
        assert sample(registry, "lightbus_sync_group_pending", listener="ok", group="msvc-ok", stream=STREAM) is None
        assert sample(registry, "lightbus_sync_events_in_flight", listener="ok") == 0
        fresh_redis_server.start()
        wait_until(lambda: sample(registry, "lightbus_sync_group_pending", listener="ok", group="msvc-ok",
                                  stream=STREAM) is not None, what="the gauge back")


def test_registering_twice_in_one_registry_is_a_clear_error(make_bus, redis_url):
    bus = make_bus(redis_url)
    registry = CollectorRegistry()
    metrics = instrument(bus, registry=registry)
    with pytest.raises(ConfigurationError, match="already registered in this registry"):
        instrument(bus, registry=registry)
    # Registering touches no Redis; a bus-only instrument has no runner gauges.
    assert sample(registry, "lightbus_sync_events_fired_total", api="metrics_in.orders", event="order_placed") is None
    bus.metrics_in.orders.order_placed.fire(order_id=1)
    assert sample(registry, "lightbus_sync_events_fired_total", api="metrics_in.orders", event="order_placed") == 1
    assert metrics.registry is registry
