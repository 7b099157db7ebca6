"""Prometheus metrics for a bus and its runner (optional: ``pip install 'lightbus_sync[metrics]'``).

``lightbus-sync run --metrics-port 9100`` serves them on ``/metrics``. An application
that embeds the bus registers them with its own registry::

    from prometheus_client import CollectorRegistry
    import lightbus_sync.metrics

    registry = CollectorRegistry()
    runner = bus.start_listener_thread()
    lightbus_sync.metrics.instrument(bus, runner, registry=registry)

(Instrument a runner before ``start()`` to count from its very first entry.)

Metrics (every name starts ``lightbus_sync_``):

=========================================  =========  ===========================================
``events_fired_total``                     counter    events written by ``fire``/``fire_many``
                                                      (labels: api, event)
``events_processed_total``                 counter    handler calls (labels: listener,
                                                      outcome = ``ok`` | ``error``)
``events_retried_total``                   counter    failed entries scheduled for a retry
                                                      (label: listener)
``events_dead_lettered_total``             counter    entries moved to a dead-letter stream
                                                      (label: listener)
``events_reclaimed_total``                 counter    stale entries claimed from a consumer that
                                                      stopped handling them (crash recovery;
                                                      retries are not counted; label: listener)
``events_lost_total``                      counter    entries lost to a listener's group: removed
                                                      from the stream before the group read them
                                                      (a lower bound on Redis 6.2), or while
                                                      pending (labels: listener, stream)
``handler_duration_seconds``               histogram  handler run time (label: listener)
``events_in_flight``                       gauge      entries this runner holds: queued or being
                                                      handled, not yet acked (label: listener)
``group_pending``                          gauge      entries delivered to the consumer group and
                                                      not acked, by any consumer (``XINFO GROUPS``)
``group_lag``                              gauge      entries not yet delivered to the group
                                                      (Redis >= 7 only; absent when Redis cannot
                                                      tell, e.g. after XDEL)
``outbox_rows``                            gauge      outbox rows waiting to be relayed (label:
                                                      database, password hidden)
``outbox_oldest_age_seconds``              gauge      age of the oldest waiting row (absent when
                                                      the outbox is empty)
=========================================  =========  ===========================================

The outbox gauges (``attach_outbox``; ``lightbus-sync run`` attaches ``bus.outbox.url``)
are counted in the database at scrape time, and left out of a scrape it does not answer.

The group gauges (labels: listener, group, stream) are read from Redis at scrape time,
through the runner's own transport; if Redis does not answer they are left out of that
scrape (and logged at debug level) rather than failing it.

Several processes, one ``/metrics`` (``lightbus-sync run --processes N``): with
``instrument(..., multiprocess=True)`` in each child and ``$PROMETHEUS_MULTIPROC_DIR``
set, counters and histograms go to prometheus_client's multiprocess files, and the
gauges above are copied there by ``refresh()`` (the child calls it every second):
``events_in_flight`` is summed over the live processes, the group gauges are the
highest any live process read (they all read the same group).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterator, Optional, cast

from .errors import ConfigurationError
from .observers import DeliveryInfo, Observer

try:
    import prometheus_client
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # pragma: no cover - exercised only without the extra
    prometheus_client = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .bus import Bus
    from .message import EventMessage
    from .runner import Runner

__all__ = ["BusMetrics", "instrument"]

logger = logging.getLogger(__name__)

PREFIX = "lightbus_sync"
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

def _require_prometheus() -> None:
    if prometheus_client is None:
        raise ConfigurationError(
            "Prometheus metrics need the prometheus-client package: pip install 'lightbus_sync[metrics]'"
        )


class _RunnerCollector:
    """Gauges read at scrape time: in-flight entries, and each group's pending and lag."""

    def __init__(self) -> None:
        self.runners: list["Runner"] = []

    def _families(self) -> tuple[Any, Any, Any]:
        return (
            GaugeMetricFamily(f"{PREFIX}_events_in_flight",
                              "Entries held by the runner: queued or being handled, not yet acked",
                              labels=["listener"]),
            GaugeMetricFamily(f"{PREFIX}_group_pending",
                              "Entries delivered to the consumer group and not yet acknowledged",
                              labels=["listener", "group", "stream"]),
            GaugeMetricFamily(f"{PREFIX}_group_lag",
                              "Entries in the stream not yet delivered to the consumer group (Redis >= 7)",
                              labels=["listener", "group", "stream"]),
        )

    def describe(self) -> Iterator[Any]:
        return iter(self._families())  # no samples: registering must not touch Redis

    def collect(self) -> Iterator[Any]:
        in_flight, pending, lag = self._families()
        for runner in list(self.runners):
            held = {route.name: 0 for route in runner.routes}
            for _, group, ids in runner.in_flight.snapshot():
                route = runner.routes.by_group(group)
                if route is not None:
                    held[route.name] = held.get(route.name, 0) + len(ids)
            for name, count in held.items():
                in_flight.add_metric([name], count)
            for route in runner.routes:
                listener = route.listener
                transport = route.transport
                for stream in route.event_streams:
                    try:
                        groups = _stream_groups(transport, stream)
                    except Exception as exc:
                        logger.debug("metrics: XINFO GROUPS %s failed: %s", stream, exc)
                        continue
                    for info in groups:
                        raw_name = info.get("name")
                        group_name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
                        if group_name != listener.group:
                            continue
                        labels = [listener.name, listener.group, stream]
                        pending.add_metric(labels, int(info.get("pending") or 0))
                        if info.get("lag") is not None:
                            lag.add_metric(labels, int(info["lag"]))
        yield in_flight
        yield pending
        yield lag


class _OutboxCollector:
    """Gauges counted in the outbox databases at scrape time: rows waiting, oldest age."""

    def __init__(self) -> None:
        self.engines: list[Any] = []

    def _families(self) -> tuple[Any, Any]:
        return (
            GaugeMetricFamily(f"{PREFIX}_outbox_rows", "Outbox rows waiting to be relayed to Redis",
                              labels=["database"]),
            GaugeMetricFamily(f"{PREFIX}_outbox_oldest_age_seconds",
                              "Seconds since the oldest waiting outbox row was written", labels=["database"]),
        )

    def describe(self) -> Iterator[Any]:
        return iter(self._families())  # no samples: registering must not touch the database

    def collect(self) -> Iterator[Any]:
        from .outbox.backlog import outbox_backlog

        rows, age = self._families()
        for engine in list(self.engines):
            try:
                backlog = outbox_backlog(engine)
            except Exception as exc:
                logger.debug("metrics: counting the outbox failed: %s", exc)
                continue
            rows.add_metric([backlog.database], backlog.rows)
            if backlog.oldest_age is not None:
                age.add_metric([backlog.database], backlog.oldest_age)
        yield rows
        yield age


def _stream_groups(transport: Any, stream: str) -> list[dict[str, Any]]:
    """``XINFO GROUPS stream`` through the transport ([] when the stream does not exist)."""
    method = getattr(transport, "stream_groups", None)
    if method is not None:
        return list(method(stream))
    import redis

    try:
        return list(transport.client.xinfo_groups(stream))
    except redis.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return []
        raise


class _FireCounter(Observer):
    """Counts a bus's fires (a bus observer also sees its runners: those are counted
    by ``attach_runner``, for the runners chosen)."""

    def __init__(self, metrics: "BusMetrics") -> None:
        self._metrics = metrics

    def on_fired(self, message: "EventMessage") -> None:
        self._metrics.fired.labels(message.api_name, message.event_name).inc()


class _SharedGauges:
    """The collector's gauges as multiprocess-mode Gauges, set by ``refresh()``: a
    parent serving several processes' files cannot call a child's collector."""

    _MODES = {"events_in_flight": "livesum", "group_pending": "livemax", "group_lag": "livemax"}

    def __init__(self, collector: _RunnerCollector) -> None:
        self._collector = collector
        self._gauges: dict[str, Any] = {}
        self._labels: dict[str, list[str]] = {}
        for family in collector.describe():
            short = family.name[len(PREFIX) + 1:]
            self._labels[family.name] = ["listener"] if short == "events_in_flight" else ["listener", "group", "stream"]
            self._gauges[family.name] = prometheus_client.Gauge(
                family.name, family.documentation, self._labels[family.name],
                multiprocess_mode=cast(Any, self._MODES[short]), registry=None)
        self._shown: dict[str, set[tuple[str, ...]]] = {name: set() for name in self._gauges}

    def refresh(self) -> None:
        for family in self._collector.collect():
            gauge = self._gauges[family.name]
            shown = set()
            for sample in family.samples:
                labels = tuple(sample.labels[name] for name in self._labels[family.name])
                gauge.labels(*labels).set(sample.value)
                shown.add(labels)
            for gone in self._shown[family.name] - shown:  # e.g. a lag Redis can no longer tell
                gauge.remove(*gone)
            self._shown[family.name] = shown


class BusMetrics(Observer):
    """The metrics of one bus and its runner(s), registered in one registry. It is the
    observer of the runners it is attached to.

    ``multiprocess=True``: for a process whose metrics another process serves
    (prometheus_client's multiprocess mode, ``$PROMETHEUS_MULTIPROC_DIR``); call
    ``refresh()`` now and then to publish the gauges."""

    def __init__(self, registry: Any = None, *, multiprocess: bool = False) -> None:
        _require_prometheus()
        self.registry = prometheus_client.REGISTRY if registry is None else registry
        self._server: Any = None
        self._outbox_collector: Optional[_OutboxCollector] = None
        try:
            self.fired = prometheus_client.Counter(
                f"{PREFIX}_events_fired", "Events written to the bus", ["api", "event"], registry=self.registry)
            self.processed = prometheus_client.Counter(
                f"{PREFIX}_events_processed", "Handler calls, by listener and outcome (ok, error)",
                ["listener", "outcome"], registry=self.registry)
            self.retried = prometheus_client.Counter(
                f"{PREFIX}_events_retried", "Failed entries scheduled for a retry", ["listener"],
                registry=self.registry)
            self.dead_lettered = prometheus_client.Counter(
                f"{PREFIX}_events_dead_lettered", "Entries moved to a dead-letter stream", ["listener"],
                registry=self.registry)
            self.reclaimed = prometheus_client.Counter(
                f"{PREFIX}_events_reclaimed",
                "Stale entries claimed from a consumer that stopped handling them (not retries)", ["listener"],
                registry=self.registry)
            self.lost = prometheus_client.Counter(
                f"{PREFIX}_events_lost",
                "Entries removed from a stream before the listener's group read them, or while pending",
                ["listener", "stream"], registry=self.registry)
            self.duration = prometheus_client.Histogram(
                f"{PREFIX}_handler_duration_seconds", "Handler run time", ["listener"],
                buckets=DURATION_BUCKETS, registry=self.registry)
            self._collector = _RunnerCollector()
            self._shared: Optional[_SharedGauges] = None
            if multiprocess:
                self._shared = _SharedGauges(self._collector)
            else:
                self.registry.register(self._collector)
        except ValueError as exc:  # "Duplicated timeseries in CollectorRegistry"
            raise ConfigurationError(
                f"lightbus_sync metrics are already registered in this registry ({exc}): instrument "
                f"once per registry, and use attach_bus()/attach_runner() on the BusMetrics it returned"
            ) from None

    def attach_bus(self, bus: "Bus") -> "BusMetrics":
        """Count the events ``bus`` fires."""
        bus.add_observer(_FireCounter(self))
        return self

    def attach_runner(self, runner: "Runner") -> "BusMetrics":
        """Count what ``runner`` does, and report its in-flight entries and groups."""
        for route in runner.routes:
            for outcome in ("ok", "error"):
                self.processed.labels(route.name, outcome)
            self.duration.labels(route.name)
            for counter in (self.retried, self.dead_lettered, self.reclaimed):
                counter.labels(route.name)
            for stream in route.event_streams:
                self.lost.labels(route.name, stream)
        runner.add_observer(self)
        self._collector.runners.append(runner)
        return self

    def attach_outbox(self, database: Any) -> "BusMetrics":
        """Report the backlog of the outbox at ``database`` (a SQLAlchemy URL or Engine)."""
        from .outbox.urls import relay_engine

        if self._outbox_collector is None:
            self._outbox_collector = _OutboxCollector()
            self.registry.register(self._outbox_collector)
        self._outbox_collector.engines.append(relay_engine(database))
        return self

    def on_handled(self, delivery: DeliveryInfo, outcome: str, duration: float) -> None:
        self.processed.labels(delivery.listener, outcome).inc()
        self.duration.labels(delivery.listener).observe(duration)

    def on_retried(self, delivery: DeliveryInfo, delay: float) -> None:
        self.retried.labels(delivery.listener).inc()

    def on_dead_lettered(self, delivery: DeliveryInfo, reason: str) -> None:
        self.dead_lettered.labels(delivery.listener).inc()

    def on_reclaimed(self, delivery: DeliveryInfo) -> None:
        self.reclaimed.labels(delivery.listener).inc()

    def on_lost(self, listener: str, stream: str, count: int) -> None:
        self.lost.labels(listener, stream).inc(count)

    def refresh(self) -> None:
        """Publish the gauges read at scrape time (multiprocess mode; else a no-op)."""
        if self._shared is not None:
            try:
                self._shared.refresh()
            except Exception:
                logger.exception("metrics: refreshing the gauges failed")

    def serve(self, port: int, host: str = "0.0.0.0") -> Any:
        """Serve this registry on ``http://host:port/metrics`` from a daemon thread."""
        try:
            result = prometheus_client.start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc}") from None
        self._server = result[0] if isinstance(result, tuple) else result
        logger.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)
        return self._server

    def close(self) -> None:
        """Stop serving (if ``serve()`` was called)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def instrument(bus: "Bus", runner: Optional["Runner"] = None, registry: Any = None, *,
               multiprocess: bool = False) -> BusMetrics:
    """Register lightbus_sync's metrics for ``bus`` (and ``runner``) in ``registry``
    (default: prometheus_client's global ``REGISTRY``); return the ``BusMetrics``.
    ``multiprocess``: see ``BusMetrics``."""
    metrics = BusMetrics(registry, multiprocess=multiprocess).attach_bus(bus)
    if runner is not None:
        metrics.attach_runner(runner)
    return metrics
