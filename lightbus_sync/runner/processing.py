"""What happens to one entry: decode, check, call the handler, then ack, retry or
dead-letter. Runs on a worker thread; never raises.

This is the policy (which failure leads to what); the settler does the mechanism.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from ..backoff import backoff_delay
from ..errors import DeadLetter
from ..incoming import IncomingDecoder
from ..listeners import ON_ERROR_ACK, ON_ERROR_STOP
from ..message import EventMessage
from ..observers import OUTCOME_ERROR, OUTCOME_OK, DeliveryInfo, Observer
from ..trimming import redelivery_floor
from ..wire import entry_size, is_noop
from .settler import Settler, describe_error
from .state import Stats, Work

logger = logging.getLogger("lightbus_sync.runner")


def _delivery_of(work: Work, message: EventMessage) -> DeliveryInfo:
    """What observers are told about ``work`` once its event is decoded."""
    return work.delivery(message.api_name, message.event_name, message.id)


class Processor:
    """Handles entries (``processor(work)``, the lanes' handle). ``fail_and_stop(reason)``
    is called for a listener with ``on_error='stop'`` whose handler failed."""

    def __init__(
        self,
        settler: Settler,
        decoder: IncomingDecoder,
        observers: Observer,
        stats: Stats,
        fail_and_stop: Callable[[str], None],
    ) -> None:
        self._settler = settler
        self._decoder = decoder
        self._observers = observers
        self._stats = stats
        self._fail_and_stop = fail_and_stop

    def __call__(self, work: Work) -> None:
        try:
            self.process(work)
        except BaseException as exc:  # process() handles handler errors; this is a last guard
            self._backstop(work, exc)

    def _backstop(self, work: Work, exc: BaseException) -> None:
        """An entry failed outside the handler (before it, or while being settled): count
        the failure like a run; after ``max_deliveries`` of them it is dead-lettered,
        before that it stays pending for a retry after the acknowledgement timeout."""
        route = work.route
        max_deliveries = route.listener.max_deliveries
        try:
            failures = self._settler.count_attempt(work)
        except BaseException:  # count_attempt logs Redis errors and returns None
            failures = None
        if failures is not None and failures >= max_deliveries:
            logger.error("processing entry %s of %s for listener %r failed outside its handler (%s), %d times: "
                         "dead-lettering it", work.entry_id.decode(), work.stream, route.name,
                         describe_error(exc), failures, exc_info=exc)
            try:
                self._dead_letter(work, exc, f"failed before its handler {failures} times", work.delivery())
                return
            except BaseException as again:
                exc = again
        logger.error("processing entry %s of %s for listener %r failed: %s; it stays pending and "
                     "will be retried after the acknowledgement timeout (failures outside the handler: %s of %d)",
                     work.entry_id.decode(), work.stream, route.name, describe_error(exc),
                     "?" if failures is None else failures, max_deliveries, exc_info=exc)
        self._settler.leave_pending(work)

    def _dead_letter(self, work: Work, error: Any, reason: str, delivery: DeliveryInfo) -> None:
        if self._settler.dead_letter(work, error, reason=reason, event_id=delivery.event_id):
            self._observers.on_dead_lettered(delivery, reason)

    def process(self, work: Work) -> None:
        """Handle one entry and settle it (ack, schedule a retry, dead-letter, or leave it
        pending for reclaim)."""
        settler = self._settler
        route = work.route
        listener = route.listener
        fields = work.fields
        if not fields:
            logger.warning(
                "entry %s of %s has no data (trimmed or deleted while pending); acked, counted as lost",
                work.entry_id.decode(), work.stream, extra={"listener": listener.name},
            )
            self._observers.on_lost(route.name, work.stream, 1)
            settler.ack(work)
            return
        if is_noop(fields):
            settler.ack(work)
            return
        limit = route.settings.max_entry_size
        if limit and entry_size(fields) > limit:
            reason = f"too large: {entry_size(fields):,} bytes > max_entry_size {limit:,}"
            self._dead_letter(work, None, reason, work.delivery())
            return
        try:
            raw = self._decoder.decode(fields)
        except Exception as exc:  # MalformedEntry, or anything a decoder may raise
            self._dead_letter(work, exc, "malformed", work.delivery())
            return
        binding = listener.binding_for(raw.api_name, raw.event_name)
        if binding is None:  # another event of a per-API stream
            self._stats.add("skipped")
            settler.ack(work)
            return
        try:
            kwargs = self._decoder.parameters(raw, binding)
        except Exception as exc:  # InvalidIncomingEvent, or anything a cast may raise
            self._dead_letter(work, exc, "invalid", work.delivery(raw.api_name, raw.event_name, raw.id))
            return
        message = EventMessage(
            raw.id, raw.api_name, raw.event_name, raw.version, kwargs,
            work.stream, work.entry_id.decode(), work.delivery_count, raw.trace_context,
        )
        if work.delivery_count == 1:
            self._run(work, message, run=1)
            return
        # Redelivered: an earlier run failed, or its process died (perhaps killed by this
        # very entry). Runs of redelivered entries are counted in Redis (deliveries are not
        # runs: a crashed process's fetched-ahead entries were delivered, never started)
        # and take turns, so a poison entry that kills its process takes no other counted
        # run with it. Past max_deliveries runs (the first delivery's counted as one), it is
        # dead-lettered without running again.
        with settler.redelivery_turn(work) as turn:
            if not turn:
                settler.give_back([work])
                return
            started = settler.count_attempt(work)
            if started is not None and started >= listener.max_deliveries:
                reason = (f"run {started} times without finishing (max_deliveries={listener.max_deliveries}): "
                          f"it may crash its process")
                self._dead_letter(work, None, reason, _delivery_of(work, message))
                return
            self._run(work, message, run=work.delivery_count if started is None else started + 1)

    def _run(self, work: Work, message: EventMessage, run: int) -> None:
        """Call the handler (its ``run``-th run) and settle the entry: ack, retry or
        dead-letter. The call is timed, and described to observers, only when one
        wants it."""
        listener = work.route.listener
        observers = self._observers
        wraps, times = observers.wraps_handler(), observers.times_handlers()
        delivery = _delivery_of(work, message) if wraps or times else None
        started = time.perf_counter() if times else 0.0
        try:
            if wraps:
                with observers.handling(delivery, message):  # type: ignore[arg-type]  # built when wraps
                    ran = self._call(work, message)
            else:
                ran = self._call(work, message)
        except BaseException as exc:  # SystemExit too: a handler never ends its worker thread
            self._stats.add("failed")
            if delivery is None:
                delivery = _delivery_of(work, message)
            if times:
                observers.on_handled(delivery, OUTCOME_ERROR, time.perf_counter() - started)
            self._handle_failure(work, delivery, message, exc, run)
            return
        if ran:
            self._stats.add("processed")
            if times:
                observers.on_handled(delivery, OUTCOME_OK, time.perf_counter() - started)  # type: ignore[arg-type]
        else:
            logger.info("event %s already handled by listener %r (inbox): acked without running",
                        message.id, listener.name,
                        extra={"event_id": message.id, "event": message.canonical_name, "listener": listener.name})
            self._stats.add("inbox_duplicates")
        if work.delivery_count == 1:
            self._settler.ack(work)
        else:
            self._settler.ack_now(work)  # before the next redelivered run, which might kill the process

    def _call(self, work: Work, message: EventMessage) -> bool:
        """Call the handler; with an inbox, inside its transaction: False when the inbox
        says the event was handled before (the handler did not run)."""
        listener = work.route.listener
        inbox = listener.inbox
        if inbox is None:
            listener.call(message)
            return True
        ran = inbox.handle(listener.group, message.id, work.stream, message.stream_id,
                           lambda session: listener.call(message, session))
        if inbox.purge_due():
            self._purge_inbox(work)
        return bool(ran)

    def _purge_inbox(self, work: Work) -> None:
        """Purge the inbox of ``work``'s listener (every ``PURGE_INTERVAL``); a failure is
        logged and waits for the next turn."""
        listener = work.route.listener
        try:
            transport = work.route.transport
            listener.inbox.purge(listener.group, lambda stream, group: redelivery_floor(transport, stream, group))
        except Exception as exc:
            logger.warning("inbox purge for listener %r failed (%s); next turn later", listener.name,
                           describe_error(exc))

    def _handle_failure(
        self, work: Work, delivery: DeliveryInfo, message: EventMessage, exc: BaseException, run: int,
    ) -> None:
        listener = work.route.listener
        settler = self._settler
        log_extra = {  # built here, off the path of handlers that succeed
            "event_id": message.id, "event": message.canonical_name, "listener": listener.name,
            "delivery_count": work.delivery_count,
        }
        if isinstance(exc, DeadLetter) or isinstance(exc, listener.dead_letter_on):
            logger.error(
                "handler of listener %r raised %s for %s (event %s): dead-lettered without retry",
                listener.name, type(exc).__name__, message.canonical_name, message.id,
                exc_info=exc, extra=log_extra,
            )
            self._dead_letter(work, exc, "handler marked permanent", delivery)
            return
        if listener.on_error == ON_ERROR_ACK:
            logger.error(
                "handler of listener %r failed for %s (event %s); acked (on_error=ack_and_log)",
                listener.name, message.canonical_name, message.id, exc_info=exc, extra=log_extra,
            )
            settler.ack(work)
            return
        if listener.on_error == ON_ERROR_STOP:
            logger.critical(
                "handler of listener %r failed for %s (event %s); stopping the runner (on_error=stop), "
                "the entry stays pending", listener.name, message.canonical_name, message.id,
                exc_info=exc, extra=log_extra,
            )
            settler.leave_pending(work)
            self._fail_and_stop(f"listener {listener.name!r} handler failed with {describe_error(exc)}")
            return
        if run >= listener.max_deliveries:
            logger.error(
                "handler of listener %r failed for %s (event %s) on run %d of %d: dead-lettered",
                listener.name, message.canonical_name, message.id, run,
                listener.max_deliveries, exc_info=exc, extra=log_extra,
            )
            self._dead_letter(work, exc, "max deliveries reached", delivery)
            return
        low, high = listener.retry_backoff
        delay = backoff_delay(run, low, high, jitter=True)
        logger.warning(
            "handler of listener %r failed for %s (event %s, run %d of %d): %s; retry in %.1fs",
            listener.name, message.canonical_name, message.id, run,
            listener.max_deliveries, describe_error(exc), delay, exc_info=exc, extra=log_extra,
        )
        settler.retry(work, delay)
        self._observers.on_retried(delivery, delay)
