"""The runner: reader threads feed lanes of worker threads; an acker and a reclaimer
keep Redis's view in step. One runner per process serves all of a bus's listeners.

Delivery is at-least-once: an entry is acked only after its handler returned (or it
was dead-lettered); anything unfinished when a process dies stays pending in Redis
and is handled again, here after a restart or by another process after the
acknowledgement timeout.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

import redis

from ..config import RedisEventTransportConfig
from ..errors import InvalidIncomingEvent, InvalidListener
from ..transport import TRANSIENT_ERRORS, RedisTransport
from .acker import Acker
from .lanes import Lane
from .processing import process
from .reader import Reader
from .reclaimer import Reclaimer
from .state import InFlight, Stats, Work

if TYPE_CHECKING:
    from ..bus import Bus
    from ..listeners import Listener
    from ..wire import RawEvent

logger = logging.getLogger("lightbus_sync.runner")

DEAD_LETTER_PREFIX = "dl:"
_MAX_ERROR_TEXT = 2000


def dead_letter_stream(stream: str) -> str:
    """``{<stream>}:dead``: beside its stream, in the same Redis Cluster slot."""
    return "{" + stream + "}:dead"


class Runner:
    """Runs the listeners registered on ``bus``.

    ``start()`` returns at once (threads are daemons, so an app's exit is never blocked
    forever); ``wait_until_ready()`` waits for the consumer groups; ``stop(timeout)``
    stops reading, lets in-flight handlers finish and acks them. Usable as a context
    manager. There should be at most one runner per bus.
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
        self.threads = threads or runner_config.threads
        self.prefetch = prefetch or (runner_config.prefetch or 2 * self.threads)
        self.shutdown_timeout = runner_config.shutdown_timeout if shutdown_timeout is None else shutdown_timeout
        self.consumer_name = bus.process_name
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
        self.stopping = threading.Event()
        self.in_flight = InFlight()
        self.stats = Stats()
        self.acker = Acker(self)
        self.reclaimer = Reclaimer(self)
        self.shared_lane = Lane("shared", self.threads, self.prefetch, self._process)
        self._lanes: dict[str, Lane] = {}
        for listener in listeners:
            if listener.concurrency is not None:
                self._lanes[listener.name] = Lane(listener.name, listener.concurrency, listener.concurrency * 2, self._process)
        self.readers = [Reader(self, l) for l in listeners]
        self.failure: Optional[str] = None
        self._started = False
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._stop_result: Optional[bool] = None
        self.duration_observers: list[Callable[[str, float], None]] = []

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
        """Stop reading, let in-flight handlers finish (within ``timeout``, default the
        shutdown timeout) and ack them. True if everything finished and was acked;
        whatever did not stays pending on Redis for reclaim. Safe to call twice."""
        with self._stop_lock:
            if self._stop_result is not None:
                return self._stop_result
            timeout = self.shutdown_timeout if timeout is None else timeout
            deadline = time.monotonic() + timeout
            self.stopping.set()
            for reader in self.readers:
                reader.join(max(deadline - time.monotonic(), 0))
            self.reclaimer.join(max(deadline - time.monotonic(), 0))
            clean = True
            for lane in [self.shared_lane, *self._lanes.values()]:
                if not lane.stop(deadline):
                    dropped = lane.drop_queued()
                    logger.warning("lane %s did not finish in time (%d queued entries left pending)", lane.name, dropped)
                    clean = False
            if not self.acker.stop(deadline):
                clean = False
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

    def dispatch(self, work: Work) -> None:
        """Queue an entry for its listener's lane (blocks while the lane is full).
        An entry already held (read twice) is not queued again."""
        if self.in_flight.add(work.stream, work.listener.group, work.entry_id):
            self._lanes.get(work.listener.name, self.shared_lane).put(work)

    def _process(self, work: Work) -> None:
        process(self, work)

    def record_duration(self, listener_name: str, seconds: float) -> None:
        for observer in self.duration_observers:
            observer(listener_name, seconds)

    def release(self, work: Work) -> None:
        """Stop holding an entry without acking it (it stays pending on Redis)."""
        self.in_flight.discard(work.stream, work.listener.group, work.entry_id)

    def schedule_retry(self, work: Work, delay: float) -> None:
        """Make the entry claimable again ``delay`` seconds from now, by setting its idle
        time to ``acknowledgement_timeout - delay`` (owner-checked, delivery count kept).
        If Redis is away the entry is simply left to the acknowledgement timeout."""
        settings = self.settings_of(work.listener)
        idle_ms = int(max(settings.acknowledgement_timeout - delay, 0) * 1000)
        try:
            self.transport_of(work.listener).set_idle_if_owner(
                work.stream, work.listener.group, self.consumer_name, idle_ms, [work.entry_id]
            )
        except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
            logger.warning("could not schedule the retry of %s (%s); it will be retried after the "
                           "acknowledgement timeout", work.entry_id.decode(), exc)
        self.stats.add("retried")
        self.release(work)

    def dead_letter(self, work: Work, error: Optional[BaseException], *, reason: str, event_id: str = "") -> None:
        """Move the entry to ``{stream}:dead`` with why, and ack it (one atomic script).
        Retried while Redis is away; if the runner stops first, the entry stays pending."""
        listener = work.listener
        error_text = "" if error is None else str(error)
        if len(error_text) > _MAX_ERROR_TEXT:
            error_text = error_text[:_MAX_ERROR_TEXT] + "..."
        meta = {
            "original_id": work.entry_id,
            "stream": work.stream,
            "group": listener.group,
            "listener": listener.name,
            "consumer": self.consumer_name,
            "delivery_count": str(work.delivery_count),
            "reason": reason,
            "error_type": "" if error is None else type(error).__name__,
            "error": error_text,
            "event_id": event_id,
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        fields: list[Any] = []
        for key, value in meta.items():
            fields += [DEAD_LETTER_PREFIX + key, value]
        for key, value in (work.fields or {}).items():
            fields += [key, value]
        settings = self.settings_of(listener)
        transport = self.transport_of(listener)
        delay = 0.1
        while True:
            try:
                transport.dead_letter(
                    work.stream, dead_letter_stream(work.stream), listener.group, work.entry_id,
                    fields, settings.max_stream_length or 0,
                )
                break
            except TRANSIENT_ERRORS as exc:
                if self.stopping.is_set() and self._stop_result is not None:
                    logger.error("could not dead-letter %s before stopping; it stays pending", work.entry_id.decode())
                    self.release(work)
                    return
                logger.warning("dead-lettering %s failed (%s); retrying", work.entry_id.decode(), exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
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
            for stream in listener.streams:
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
