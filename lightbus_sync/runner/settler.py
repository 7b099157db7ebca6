"""The settler: how an entry leaves the runner's hands. Mechanism only; which failure
leads to what is processing's policy (processing.py).

- ``ack``/``ack_now``: handled; XACK (through the acker).
- ``retry``: failed, run it again after a delay: stop holding it and set its idle time
  so that it becomes claimable (by any consumer of the group) when the delay ends.
- ``give_back``: fetched but never started (on stop): stop holding it and make it
  claimable at once.
- ``leave_pending``: stop holding it, touch nothing in Redis: it stays pending and is
  claimed after the acknowledgement timeout.
- ``dead_letter``: move it to ``{stream}:dead`` and ack it, in one script.
- ``count_attempt`` and ``redelivery_turn``: the bookkeeping of redelivered entries.

Letting go (retry, give back) takes the in-flight set's lease lock, so a lease renewal
cannot reset the idle time just set.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Iterator, Optional

import redis

from ..backoff import Backoff
from ..dead_letter_record import encode_dead_letter
from ..errors import ScriptRefused
from ..keys import attempts_field, attempts_key, dead_letter_stream, original_stream, retry_mark_field
from ..transport import TRANSIENT_ERRORS
from .acker import Acker
from .state import InFlight, Stats, Work

logger = logging.getLogger("lightbus_sync.runner")

#: Attempt counters and retry marks of entries never settled (stream trimmed, group
#: deleted) expire.
ATTEMPTS_TTL = 7 * 24 * 3600


def describe_error(error: BaseException, with_type: bool = True) -> str:
    """``Type: message`` for logs and dead letters; never raises (an exception's
    ``__str__`` may)."""
    try:
        text = str(error)
    except Exception:
        text = f"<{type(error).__name__} whose str() failed>"
    return f"{type(error).__name__}: {text}" if with_type else text


class Settler:
    """Settles entries (see the module docs). ``stopping`` is set when the runner begins
    to stop, ``stopped`` once it has: a dead-letter write retried while Redis is away
    gives up then (the entry stays pending)."""

    def __init__(
        self, acker: Acker, in_flight: InFlight, stopping: threading.Event, stopped: threading.Event, stats: Stats
    ) -> None:
        self._acker = acker
        self._in_flight = in_flight
        self._stopping = stopping
        self._stopped = stopped
        self._stats = stats
        self._redelivery_lock = threading.Lock()

    # --- handled ---------------------------------------------------------------------

    def ack(self, work: Work) -> None:
        """Queue the entry's XACK (returns at once)."""
        self._acker.ack(work)

    def ack_now(self, work: Work) -> None:
        """XACK before returning (queued instead if Redis is away)."""
        self._acker.ack_now(work)

    # --- not handled (yet) ---------------------------------------------------------------

    def leave_pending(self, work: Work) -> None:
        """Stop holding an entry without acking it: it stays pending on Redis."""
        self._in_flight.discard(work.stream, work.route.group, work.entry_id)

    def retry(self, work: Work, delay: float) -> None:
        """Make a failed entry claimable again in ``delay`` seconds: its idle time is set
        to ``acknowledgement_timeout - delay``, and a retry mark tells the reclaimer
        that claiming it is a retry, not a crash recovery. If Redis is away, the entry
        is simply left to the acknowledgement timeout."""
        route = work.route
        self._leave_pending_with_idle([work], int(max(route.settings.acknowledgement_timeout - delay, 0) * 1000))
        try:
            route.transport.mark_retries(
                attempts_key(work.stream), [retry_mark_field(work.stream, route.group, work.entry_id)], ATTEMPTS_TTL
            )
        except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
            logger.warning("could not mark %s for retry (%s); its claim will count as a reclaim",
                           work.entry_id.decode(), exc)

    def give_back(self, works: list[Work]) -> None:
        """Let go of entries fetched but not started (on stop): they stay pending, with
        their idle time set to the acknowledgement timeout so that any live consumer
        claims them at its next reclaim pass."""
        if not works:
            return
        by_route: dict[int, list[Work]] = {}
        for work in works:
            by_route.setdefault(id(work.route), []).append(work)
        for group in by_route.values():
            self._leave_pending_with_idle(group, int(group[0].route.settings.acknowledgement_timeout * 1000))
        self._stats.add("given_back", len(works))

    def _leave_pending_with_idle(self, works: list[Work], idle_ms: int) -> None:
        """Stop holding ``works`` (all of one route) and set their idle time, as one
        step against lease renewal (which would reset it to 0)."""
        route = works[0].route
        by_stream: dict[str, list[bytes]] = {}
        for work in works:
            by_stream.setdefault(work.stream, []).append(work.entry_id)
        with self._in_flight.lease_lock:
            for work in works:
                self.leave_pending(work)
            for stream, ids in by_stream.items():
                try:
                    route.transport.set_idle_if_owner(stream, route.group, route.consumer, idle_ms, ids)
                except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
                    logger.warning("could not set the idle time of %d entries of %s (%s); they will be "
                                   "claimable after the acknowledgement timeout", len(ids), stream, exc)

    # --- given up ------------------------------------------------------------------------

    def dead_letter(self, work: Work, error: Optional[BaseException], *, reason: str, event_id: str = "") -> bool:
        """Move the entry to ``{stream}:dead`` with why, and ack it (one atomic script);
        True once done. Retried while Redis is away; if the runner stops first, the
        entry stays pending (False). If Redis refuses it (``ScriptRefused``: nothing
        changed, or the error says what did), it stays pending too (False)."""
        route = work.route
        error_text = "" if error is None else describe_error(error, with_type=False)
        stream = original_stream(work.stream)  # a replayed entry dead-letters like the original
        fields = encode_dead_letter(
            original_id=work.entry_id, stream=stream, group=route.group, listener=route.name,
            consumer=route.consumer, delivery_count=work.delivery_count, reason=reason,
            error_type="" if error is None else type(error).__name__, error=error_text,
            event_id=event_id, original_fields=work.fields,
        )
        transport = route.transport
        delay = Backoff(0.1, 2.0)
        while True:
            try:
                transport.dead_letter(
                    work.stream, dead_letter_stream(stream), attempts_key(work.stream), route.group,
                    work.entry_id, fields, route.settings.max_stream_length or 0,
                )
                break
            except ScriptRefused as exc:  # an ACL denial, OOM...: the script says what it changed
                if exc.unchanged:
                    logger.error("could not dead-letter entry %s of %s for listener %r: %s; the entry stays "
                                 "pending and will be retried after the acknowledgement timeout",
                                 work.entry_id.decode(), work.stream, route.name, exc)
                else:
                    logger.error("dead-lettering entry %s of %s for listener %r was refused part-way: %s; the "
                                 "entry stays pending (it may be dead-lettered twice)",
                                 work.entry_id.decode(), work.stream, route.name, exc)
                self.leave_pending(work)
                return False
            except TRANSIENT_ERRORS as exc:
                if self._stopped.is_set():
                    logger.error("could not dead-letter %s before stopping; it stays pending", work.entry_id.decode())
                    self.leave_pending(work)
                    return False
                logger.warning("dead-lettering %s failed (%s); retrying", work.entry_id.decode(), exc)
                time.sleep(delay.next())
        if stream != work.stream:  # from a replay stream, which only this group reads: drop it
            try:
                transport.delete_entries(work.stream, [work.entry_id.decode()])
            except (redis.RedisError, *TRANSIENT_ERRORS):
                pass
        logger.error(
            "dead-lettered entry %s of %s for listener %r: %s%s",
            work.entry_id.decode(), work.stream, route.name, reason,
            f" ({type(error).__name__}: {error_text})" if error is not None else "",
            extra={"event_id": event_id, "listener": route.name, "delivery_count": work.delivery_count},
        )
        self.leave_pending(work)
        return True

    # --- redelivered entries ---------------------------------------------------------------

    @contextlib.contextmanager
    def redelivery_turn(self, work: Work) -> Iterator[bool]:
        """Runs of redelivered entries take turns (one at a time in this process), for at
        most ``acknowledgement_timeout`` each: a run still going after that is slow, not
        a crash, and the next one starts anyway. Yields False if the runner began to stop
        while this one waited (the caller gives the entry back instead of running it)."""
        deadline = time.monotonic() + work.route.settings.acknowledgement_timeout
        acquired = False
        while not acquired and time.monotonic() < deadline:
            acquired = self._redelivery_lock.acquire(timeout=min(max(deadline - time.monotonic(), 0), 0.2))
            if not acquired and self._stopping.is_set():
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
            return work.route.transport.count_attempt(
                attempts_key(work.stream), attempts_field(work.stream, work.route.group, work.entry_id), ATTEMPTS_TTL
            )
        except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
            logger.warning("could not count the attempt on %s (%s)", work.entry_id.decode(), exc)
            return None
