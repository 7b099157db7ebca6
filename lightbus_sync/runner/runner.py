"""The runner: reader threads feed lanes of worker threads; an acker and a reclaimer
keep Redis's view in step. One runner per process serves all of a bus's listeners.

Delivery is at-least-once: an entry is acked only after its handler returned (or it
was dead-lettered); anything unfinished when a process dies stays pending in Redis
and is handled again, here after a restart or by another process after the
acknowledgement timeout.

The runner is the assembler: its constructor builds one route per listener
(routes.py) and hands every part the collaborators it needs; no part calls back into
the runner. See docs/architecture.md for the threads and queues.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Protocol


from ..config import default_process_name
from ..errors import ConfigurationError, InvalidListener
from ..incoming import IncomingDecoder
from ..observers import Observer, Observers
from ..transport import REDIS_ERRORS
from .acker import Acker
from .dispatch import Dispatcher
from .keeper import Keeper
from .lanes import Lane
from .preflight import check_access
from .processing import Processor
from .reader import Reader
from .reclaimer import Reclaimer
from .routes import RouteTable, make_route
from .settler import Settler
from .state import InFlight, Stats

if TYPE_CHECKING:
    from ..config import RootConfig
    from ..listeners import Listener
    from ..schema import SchemaRegistry
    from ..transport import RedisTransport

logger = logging.getLogger("lightbus_sync.runner")


class BusParts(Protocol):
    """What a runner takes from its bus (``lightbus_sync.bus.Bus`` has it all)."""

    config: "RootConfig"
    service_name: str
    process_name: str
    schemas: "SchemaRegistry"
    observers: Observers
    start_hooks: list[Callable[[], Any]]
    stop_hooks: list[Callable[[], Any]]

    @property
    def listeners(self) -> Iterable["Listener"]: ...

    def transport_for(self, api_name: str) -> "RedisTransport": ...

    def local_apis(self) -> list[Any]: ...

    def local_event(self, api_name: str, event_name: str) -> Any: ...


class Runner:
    """Runs the listeners registered on ``bus``.

    ``start()`` returns at once (threads are daemons, so an app's exit is never blocked
    forever); ``wait_until_ready()`` waits for the consumer groups; ``stop(timeout)``
    stops reading, lets in-flight handlers finish and acks them. Usable as a context
    manager. There should be at most one runner per bus.

    The consumer name is the configured ``process_name``; without one it is
    ``<hostname>-<pid>`` of the process the runner is created in (so processes forked
    after ``create()`` do not share a consumer).
    """

    def __init__(
        self,
        bus: BusParts,
        *,
        threads: Optional[int] = None,
        prefetch: Optional[int] = None,
        shutdown_timeout: Optional[float] = None,
        listener_names: Optional[list[str]] = None,
    ) -> None:
        runner_config = bus.config.bus.runner
        self.bus = bus
        self.threads = runner_config.threads if threads is None else threads
        if prefetch is None:
            prefetch = runner_config.prefetch
        self.shutdown_timeout = runner_config.shutdown_timeout if shutdown_timeout is None else shutdown_timeout
        for name, value, low in (("threads", self.threads, 1), ("prefetch", 0 if prefetch is None else prefetch, 0),
                                 ("shutdown_timeout", self.shutdown_timeout, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                raise ConfigurationError(f"runner {name} must be a number >= {low}, got {value!r}")
        self.consumer_name = bus.process_name if bus.config.process_name else default_process_name()
        listeners = list(bus.listeners)
        if listener_names is not None:
            known = {l.name for l in listeners}
            unknown = sorted(set(listener_names) - known)
            if unknown:
                raise InvalidListener(f"no listener(s) named {', '.join(unknown)}; registered: {', '.join(sorted(known))}")
            listeners = [l for l in listeners if l.name in listener_names]
        if not listeners:
            raise InvalidListener(
                "no listeners to run: register some with bus.<api>.<event>.listen(handler, listener_name=...) "
                "(in before_server_start() or at import time of the bus module)"
            )
        self.listeners: list["Listener"] = listeners
        transports: dict[str, "RedisTransport"] = {}
        settings = {}
        for listener in listeners:
            urls = {bus.config.api(a).redis.url for a in listener.api_names}
            if len(urls) > 1:
                raise InvalidListener(f"listener {listener.name!r} covers APIs on different Redis servers; split it")
            transports[listener.name] = bus.transport_for(listener.api_names[0])
            settings[listener.name] = bus.config.api(listener.api_names[0]).redis
        # Read-ahead: by default two full batches (a smaller room would shrink every
        # XREADGROUP below batch_size, and the next batch is read while one is handled)
        # and at least two entries per thread.
        self.prefetch = prefetch if prefetch is not None else max(
            2 * self.threads, *(2 * s.batch_size for s in settings.values())
        )
        self.stopping = threading.Event()
        self._stopped = threading.Event()
        self.in_flight = InFlight()
        self.stats = Stats()
        #: Every observer of this runner: its stats, the bus's observers, and those
        #: added with ``add_observer``.
        self.observers = Observers([self.stats, bus.observers])
        self.acker = Acker(self.in_flight, self.stats)
        self.settler = Settler(self.acker, self.in_flight, self.stopping, self._stopped, self.stats)
        decoder = IncomingDecoder(bus.config.api, lambda api, event: bus.schemas.validator(api, event), bus.local_event)
        self.processor = Processor(self.settler, decoder, self.observers, self.stats, self.fail_and_stop)
        self.shared_lane = Lane("shared", self.threads, self.prefetch, self.processor)
        self._lanes: dict[str, Lane] = {}
        for listener in listeners:
            if listener.concurrency is not None:
                self._lanes[listener.name] = Lane(listener.name, listener.concurrency, listener.concurrency,
                                                  self.processor)
        self.routes = RouteTable(
            make_route(l, transports[l.name], settings[l.name], self._lanes.get(l.name, self.shared_lane),
                       self.consumer_name)
            for l in listeners
        )
        dispatch = Dispatcher(self.in_flight, self.stopping, self.settler)
        self.readers = [
            Reader(route, dispatch, self.stopping, self.stats, self.in_flight,
                   lambda reason: self.fail_and_stop(reason, access=True))
            for route in self.routes
        ]
        self.reclaimer = Reclaimer(
            self.routes, self.in_flight, dispatch, self.stopping, self.stats, self.observers,
            ready=self.wait_until_ready, drained=lambda: all(r.drained.is_set() for r in self.readers),
        )
        #: Reports losses of the runner's groups and trims their streams.
        self.keeper = Keeper(self.routes, self.stopping, self.observers)
        self.failure: Optional[str] = None
        #: True when the failure is Redis refusing access (``lightbus-sync run`` exits 2).
        self.failure_is_access = False
        self._started = False
        self._stop_lock = threading.Lock()
        self._stop_result: Optional[bool] = None

    def add_observer(self, observer: Observer) -> Observer:
        """Tell ``observer`` what this runner does (see lightbus_sync.observers); add it
        before ``start()`` to see the first entries."""
        return self.observers.add(observer)

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> "Runner":
        """Check access (raises ``AccessRefused``: a refused password or user, missing ACL
        permissions), report losses that happened while stopped, then start reading."""
        if self._started:
            raise RuntimeError("this runner was already started")
        check_access(self.routes, [d.name for d in self.bus.local_apis()])
        self._started = True
        for hook in self.bus.start_hooks:
            hook()
        self._publish_schemas()
        self.keeper.check_now()  # before the first read moves past a gap
        self.acker.start()
        self.shared_lane.start()
        for lane in self._lanes.values():
            lane.start()
        for reader in self.readers:
            reader.start()
        self.reclaimer.start()
        self.keeper.start()
        self.observers.on_started(self.consumer_name, [l.name for l in self.listeners])
        logger.info(
            "runner started: service %r, consumer %r, %d listener(s) [%s], %d thread(s)",
            self.bus.service_name, self.consumer_name, len(self.listeners),
            ", ".join(f"{l.name}->{l.group}" for l in self.listeners), self.threads,
        )
        return self

    def _publish_schemas(self) -> None:
        """Publish the schemas of the APIs this process defines (kept fresh while it runs)."""
        names = [d.name for d in self.bus.local_apis()]
        try:
            self.bus.schemas.publish(names)
        except Exception as exc:
            logger.warning("could not publish schemas yet (%s); will retry", exc)
            for name in names:
                self.bus.schemas.ensure_published(name)

    def wait_until_ready(self, timeout: Optional[float] = None) -> bool:
        """True once every listener's consumer groups exist and reading has started."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for reader in self.readers:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not reader.ready.wait(remaining):
                return False
        return True

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Stop reading, give back the entries fetched but not started (they stay pending,
        claimable at once by any live consumer), let running handlers finish (within
        ``timeout``, default the shutdown timeout) and ack them. True if every handler
        finished and was acked; whatever did not stays pending on Redis for reclaim.
        Safe to call twice."""
        with self._stop_lock:
            if self._stop_result is not None:
                return self._stop_result
            if not self._started:
                self._stop_result = True
                self._stopped.set()
                return True
            timeout = self.shutdown_timeout if timeout is None else timeout
            deadline = time.monotonic() + timeout
            self.stopping.set()
            for reader in self.readers:
                reader.join(max(deadline - time.monotonic(), 0))
            self.reclaimer.finish_pass(deadline - time.monotonic())
            clean = True
            for lane in [self.shared_lane, *self._lanes.values()]:
                ended, unstarted = lane.stop(deadline)
                self.settler.give_back(unstarted)
                if not ended:
                    logger.warning("lane %s: handlers still running at the shutdown timeout; their entries "
                                   "stay pending", lane.name)
                    clean = False
            if not self.acker.stop(deadline):
                clean = False
            self.reclaimer.stop(max(deadline - time.monotonic(), 0) + 1)
            self.keeper.join(max(deadline - time.monotonic(), 0) + 1)
            self._forget_own_consumer()
            for hook in self.bus.stop_hooks:
                try:
                    hook()
                except Exception:
                    logger.exception("on_stop hook %r failed", hook)
            logger.info("runner stopped (%s): %s", "clean" if clean else "entries left pending",
                        {"lost": 0, **self.stats.as_dict()})
            self._stop_result = clean
            self._stopped.set()
            self.observers.on_stopped(self.consumer_name, clean)
            return clean

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the runner has stopped; True if it has."""
        return self._stopped.wait(timeout)

    def fail_and_stop(self, reason: str, *, access: bool = False) -> None:
        """Record a fatal failure and stop from another thread (on_error='stop'; with
        ``access``, Redis refused this process's password, user or permissions)."""
        if self.failure is None:
            self.failure = reason
            self.failure_is_access = access
        threading.Thread(target=self.stop, name="lightbus-stopper", daemon=True).start()

    def is_alive(self) -> bool:
        """True while started, not stopped, and every thread is running."""
        return self._started and not self._stopped.is_set() and self.healthy()

    def healthy(self) -> bool:
        """Every reader, worker, the acker and the reclaimer thread is alive."""
        lanes_ok = self.shared_lane.alive() and all(l.alive() for l in self._lanes.values())
        return (lanes_ok and self.acker.alive() and self.reclaimer.alive() and self.keeper.alive()
                and all(r.alive() for r in self.readers))

    def __enter__(self) -> "Runner":
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _forget_own_consumer(self) -> None:
        """On stop, delete our consumer from each group if it holds nothing pending, so
        per-process consumer names do not pile up."""
        for route in self.routes:
            for stream in route.streams:
                try:
                    route.transport.delete_consumer_if_idle(stream, route.group, self.consumer_name)
                except REDIS_ERRORS:
                    pass

    # --- reporting -------------------------------------------------------------------

    def status_line(self) -> str:
        s = self.stats.as_dict()
        return (
            f"{len(self.listeners)} listener(s), in flight {len(self.in_flight)}, "
            f"processed {s.get('processed', 0)}, failed {s.get('failed', 0)}, "
            f"dead-lettered {s.get('dead_lettered', 0)}"
        )
