"""The runner: reader threads feed lanes of worker threads; an acker and a reclaimer
keep Redis's view in step. One runner per process serves all of a bus's listeners.

Delivery is at-least-once: an entry is acked only after its handler returned (or it
was dead-lettered); anything unfinished when a process dies stays pending in Redis
and is handled again, here after a restart or by another process after the
acknowledgement timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import redis

from ..backoff import Backoff
from ..config import RedisEventTransportConfig, default_process_name
from ..errors import ConfigurationError, InvalidIncomingEvent, InvalidListener
from ..transport import TRANSIENT_ERRORS, RedisTransport
from .acker import Acker
from .lanes import Lane
from .processing import describe_error, process
from .reader import Reader
from .reclaimer import Reclaimer
from ..dead_letter_record import encode_dead_letter
from ..keys import attempts_field, attempts_key, dead_letter_stream, original_stream, replay_stream
from .state import InFlight, Stats, Work

#: Attempt counters of entries never settled (stream trimmed, group deleted) expire.
_ATTEMPTS_TTL = 7 * 24 * 3600

if TYPE_CHECKING:
    from ..bus import Bus
    from ..listeners import Listener
    from ..wire import RawEvent

logger = logging.getLogger("lightbus_sync.runner")


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
        bus: "Bus",
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
        self._by_group = {l.group: l for l in listeners}
        self._transports: dict[str, RedisTransport] = {}
        self._settings: dict[str, RedisEventTransportConfig] = {}
        for listener in listeners:
            urls = {bus.config.api(a).redis.url for a in listener.api_names}
            if len(urls) > 1:
                raise InvalidListener(f"listener {listener.name!r} covers APIs on different Redis servers; split it")
            self._transports[listener.name] = bus.transport_for(listener.api_names[0])
            self._settings[listener.name] = bus.config.api(listener.api_names[0]).redis
        # Read-ahead: by default two full batches (a smaller room would shrink every
        # XREADGROUP below batch_size, and the next batch is read while one is handled)
        # and at least two entries per thread.
        self.prefetch = prefetch if prefetch is not None else max(
            2 * self.threads, *(2 * settings.batch_size for settings in self._settings.values())
        )
        self.stopping = threading.Event()
        self.in_flight = InFlight()
        self.stats = Stats()
        self.acker = Acker(self)
        self.reclaimer = Reclaimer(self)
        self.shared_lane = Lane("shared", self.threads, self.prefetch, self._process)
        self._lanes: dict[str, Lane] = {}
        for listener in listeners:
            if listener.concurrency is not None:
                self._lanes[listener.name] = Lane(listener.name, listener.concurrency, listener.concurrency, self._process)
        self.readers = [Reader(self, l) for l in listeners]
        self._redelivery_lock = threading.Lock()
        self.failure: Optional[str] = None
        self._started = False
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._stop_result: Optional[bool] = None
        self.duration_observers: list[Callable[[str, float], None]] = []
        #: Called with (listener name, "ok" | "error") after each handler call.
        self.outcome_observers: list[Callable[[str, str], None]] = []

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> "Runner":
        if self._started:
            raise RuntimeError("this runner was already started")
        self._started = True
        for hook in self.bus.start_hooks:
            hook()
        self._publish_schemas()
        self.acker.start()
        self.shared_lane.start()
        for lane in self._lanes.values():
            lane.start()
        for reader in self.readers:
            reader.start()
        self.reclaimer.start()
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
                self.give_back(unstarted)
                if not ended:
                    logger.warning("lane %s: handlers still running at the shutdown timeout; their entries "
                                   "stay pending", lane.name)
                    clean = False
            if not self.acker.stop(deadline):
                clean = False
            self.reclaimer.stop(max(deadline - time.monotonic(), 0) + 1)
            self._forget_own_consumer()
            for hook in self.bus.stop_hooks:
                try:
                    hook()
                except Exception:
                    logger.exception("on_stop hook %r failed", hook)
            logger.info("runner stopped (%s): %s", "clean" if clean else "entries left pending", self.stats.as_dict())
            self._stop_result = clean
            self._stopped.set()
            return clean

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the runner has stopped; True if it has."""
        return self._stopped.wait(timeout)

    def fail_and_stop(self, reason: str) -> None:
        """Record a fatal failure and stop from another thread (on_error='stop')."""
        if self.failure is None:
            self.failure = reason
        threading.Thread(target=self.stop, name="lightbus-stopper", daemon=True).start()

    def is_alive(self) -> bool:
        """True while started, not stopped, and every thread is running."""
        return self._started and not self._stopped.is_set() and self.healthy()

    def healthy(self) -> bool:
        """Every reader, worker, the acker and the reclaimer thread is alive."""
        lanes_ok = self.shared_lane.alive() and all(l.alive() for l in self._lanes.values())
        return lanes_ok and self.acker.alive() and self.reclaimer.alive() and all(r.alive() for r in self.readers)

    def __enter__(self) -> "Runner":
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- used by readers, workers, reclaimer -------------------------------------------

    def streams_of(self, listener: "Listener") -> list[str]:
        """The streams a listener's group reads: its event streams, then a replay stream
        for each (dead letters replayed for this group alone)."""
        return [*listener.streams, *(replay_stream(s, listener.group) for s in listener.streams)]

    def transport_of(self, listener: "Listener") -> RedisTransport:
        return self._transports[listener.name]

    def settings_of(self, listener: "Listener") -> RedisEventTransportConfig:
        return self._settings[listener.name]

    def listener_by_group(self, group: str) -> Optional["Listener"]:
        return self._by_group.get(group)

    def cast_values_for(self, api_name: str) -> bool:
        return self.bus.config.api(api_name).cast_values

    def validate_incoming(self, raw: "RawEvent") -> None:
        """Check an event's raw parameters against its schema when ``validate.incoming``
        is on; raises InvalidIncomingEvent with the validator's message."""
        api_config = self.bus.config.api(raw.api_name)
        if not api_config.validate.incoming:
            return
        validator = self.bus.schemas.validator(raw.api_name, raw.event_name)
        if validator is None:
            if api_config.strict_validation:
                raise InvalidIncomingEvent(
                    f"{raw.api_name}.{raw.event_name}: no schema known for this event (strict_validation)"
                )
            return
        try:
            validator(raw.parameters)
        except Exception as exc:  # fastjsonschema.JsonSchemaException
            raise InvalidIncomingEvent(
                f"{raw.api_name}.{raw.event_name}: parameters do not match the schema: {getattr(exc, 'message', exc)}"
            ) from None

    def lane_of(self, listener: "Listener") -> Lane:
        return self._lanes.get(listener.name, self.shared_lane)

    def dispatch(self, works: list[Work]) -> None:
        """Track fetched entries (their leases are renewed from now on) and queue them
        for their listener's lane. An entry already held (fetched twice) is not queued
        again; entries fetched while stopping are given back at once."""
        if not works:
            return
        fresh = [w for w in works if self.in_flight.add(w.stream, w.listener.group, w.entry_id)]
        if self.stopping.is_set():
            self.give_back(fresh)
            return
        for work in fresh:
            self.lane_of(work.listener).put(work)

    def _process(self, work: Work) -> None:
        try:
            process(self, work)
        except BaseException as exc:  # process() handles handler errors; this is a last guard
            logger.error("processing entry %s of %s for listener %r failed: %s; it stays pending and "
                         "will be retried after the acknowledgement timeout", work.entry_id.decode(),
                         work.stream, work.listener.name, describe_error(exc), exc_info=exc)
            self.release(work)

    def record_duration(self, listener_name: str, seconds: float) -> None:
        for observer in self.duration_observers:
            try:
                observer(listener_name, seconds)
            except Exception:
                logger.exception("duration observer %r failed", observer)

    def record_outcome(self, listener_name: str, outcome: str) -> None:
        for observer in self.outcome_observers:
            try:
                observer(listener_name, outcome)
            except Exception:
                logger.exception("outcome observer %r failed", observer)

    def release(self, work: Work) -> None:
        """Stop holding an entry without acking it (it stays pending on Redis)."""
        self.in_flight.discard(work.stream, work.listener.group, work.entry_id)

    def schedule_retry(self, work: Work, delay: float) -> None:
        """Make the entry claimable again ``delay`` seconds from now, by setting its idle
        time to ``acknowledgement_timeout - delay`` (owner-checked, delivery count kept).
        If Redis is away the entry is simply left to the acknowledgement timeout."""
        settings = self.settings_of(work.listener)
        self._let_go([work], int(max(settings.acknowledgement_timeout - delay, 0) * 1000))
        self.stats.add("retried")

    @contextlib.contextmanager
    def redelivery_turn(self, work: Work) -> Iterator[bool]:
        """Runs of redelivered entries take turns (one at a time in this process), for at
        most ``acknowledgement_timeout`` each: a run still going after that is slow, not
        a crash, and the next one starts anyway. Yields False if the runner began to stop
        while this one waited (the caller gives the entry back instead of running it)."""
        deadline = time.monotonic() + self.settings_of(work.listener).acknowledgement_timeout
        acquired = False
        while not acquired and time.monotonic() < deadline:
            acquired = self._redelivery_lock.acquire(timeout=min(max(deadline - time.monotonic(), 0), 0.2))
            if not acquired and self.stopping.is_set():
                yield False
                return
        try:
            yield True
        finally:
            if acquired:
                self._redelivery_lock.release()

    def count_attempt(self, work: Work) -> Optional[int]:
        """Count a handler run about to start on a redelivered entry; return how many
        runs of it have started since its first delivery (None if Redis refused).

        The server's delivery count also counts deliveries to processes that died before
        starting the handler (entries fetched ahead), so a crash would push innocent
        neighbours of a poison entry towards ``max_deliveries``; this counts real runs."""
        try:
            return self.transport_of(work.listener).count_attempt(
                attempts_key(work.stream), attempts_field(work.stream, work.listener.group, work.entry_id), _ATTEMPTS_TTL
            )
        except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
            logger.warning("could not count the attempt on %s (%s)", work.entry_id.decode(), exc)
            return None

    def give_back(self, works: list[Work]) -> None:
        """Let go of entries fetched but not started (on stop): they stay pending, with
        their idle time set to the acknowledgement timeout so that any live consumer
        claims them at its next reclaim pass."""
        if not works:
            return
        by_listener: dict[str, list[Work]] = {}
        for work in works:
            by_listener.setdefault(work.listener.name, []).append(work)
        for group in by_listener.values():
            self._let_go(group, int(self.settings_of(group[0].listener).acknowledgement_timeout * 1000))
        self.stats.add("given_back", len(works))

    def _let_go(self, works: list[Work], idle_ms: int) -> None:
        """Stop holding ``works`` (all of one listener) and set their idle time, as one
        step against lease renewal (which would reset it to 0)."""
        listener = works[0].listener
        transport = self.transport_of(listener)
        by_stream: dict[str, list[bytes]] = {}
        for work in works:
            by_stream.setdefault(work.stream, []).append(work.entry_id)
        with self.in_flight.lease_lock:
            for work in works:
                self.release(work)
            for stream, ids in by_stream.items():
                try:
                    transport.set_idle_if_owner(stream, listener.group, self.consumer_name, idle_ms, ids)
                except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
                    logger.warning("could not set the idle time of %d entries of %s (%s); they will be "
                                   "claimable after the acknowledgement timeout", len(ids), stream, exc)

    def dead_letter(self, work: Work, error: Optional[BaseException], *, reason: str, event_id: str = "") -> None:
        """Move the entry to ``{stream}:dead`` with why, and ack it (one atomic script).
        Retried while Redis is away; if the runner stops first, the entry stays pending."""
        listener = work.listener
        error_text = "" if error is None else describe_error(error, with_type=False)
        stream = original_stream(work.stream)  # a replayed entry dead-letters like the original
        fields = encode_dead_letter(
            original_id=work.entry_id, stream=stream, group=listener.group, listener=listener.name,
            consumer=self.consumer_name, delivery_count=work.delivery_count, reason=reason,
            error_type="" if error is None else type(error).__name__, error=error_text,
            event_id=event_id, original_fields=work.fields,
        )
        settings = self.settings_of(listener)
        transport = self.transport_of(listener)
        delay = Backoff(0.1, 2.0)
        while True:
            try:
                transport.dead_letter(
                    work.stream, dead_letter_stream(stream), attempts_key(work.stream), listener.group,
                    work.entry_id, fields, settings.max_stream_length or 0,
                )
                break
            except TRANSIENT_ERRORS as exc:
                if self.stopping.is_set() and self._stop_result is not None:
                    logger.error("could not dead-letter %s before stopping; it stays pending", work.entry_id.decode())
                    self.release(work)
                    return
                logger.warning("dead-lettering %s failed (%s); retrying", work.entry_id.decode(), exc)
                time.sleep(delay.next())
        if stream != work.stream:  # from a replay stream, which only this group reads: drop it
            try:
                transport.delete_entries(work.stream, [work.entry_id.decode()])
            except (redis.RedisError, *TRANSIENT_ERRORS):
                pass
        logger.error(
            "dead-lettered entry %s of %s for listener %r: %s%s",
            work.entry_id.decode(), work.stream, listener.name, reason,
            f" ({type(error).__name__}: {error_text})" if error is not None else "",
            extra={"event_id": event_id, "listener": listener.name, "delivery_count": work.delivery_count},
        )
        self.stats.add("dead_lettered")
        self.release(work)

    def _forget_own_consumer(self) -> None:
        """On stop, delete our consumer from each group if it holds nothing pending, so
        per-process consumer names do not pile up."""
        for listener in self.listeners:
            transport = self.transport_of(listener)
            for stream in self.streams_of(listener):
                try:
                    transport.delete_consumer_if_idle(stream, listener.group, self.consumer_name)
                except (redis.RedisError, *TRANSIENT_ERRORS):
                    pass

    # --- reporting -------------------------------------------------------------------

    def status_line(self) -> str:
        s = self.stats.as_dict()
        return (
            f"{len(self.listeners)} listener(s), in flight {len(self.in_flight)}, "
            f"processed {s.get('processed', 0)}, failed {s.get('failed', 0)}, "
            f"dead-lettered {s.get('dead_lettered', 0)}"
        )
