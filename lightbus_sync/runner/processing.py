"""What happens to one entry: decode, check, call the handler, then ack, retry or
dead-letter. Runs on a worker thread; never raises."""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any

from ..errors import DeadLetter, InvalidIncomingEvent, MalformedEntry
from ..listeners import ON_ERROR_ACK, ON_ERROR_STOP
from ..message import EventMessage
from ..wire import decode_entry, is_noop
from .state import Work

if TYPE_CHECKING:
    from .runner import Runner

logger = logging.getLogger("lightbus_sync.runner")


def retry_delay(delivery_count: int, low: float, high: float) -> float:
    """Exponential backoff with jitter: ``low * 2**(n-1)``, capped at ``high``, then
    scaled by a random factor in [0.5, 1]."""
    delay = min(high, low * (2 ** max(delivery_count - 1, 0)))
    return delay * (0.5 + random.random() / 2)


def process(runner: "Runner", work: Work) -> None:
    """Handle one entry and settle it (ack, schedule a retry, dead-letter, or leave it
    pending for reclaim)."""
    listener = work.listener
    fields = work.fields
    if not fields:
        logger.warning(
            "entry %s of %s has no data (trimmed or deleted while pending); acked, counted as lost",
            work.entry_id.decode(), work.stream, extra={"listener": listener.name},
        )
        runner.stats.add("lost")
        runner.acker.ack(work)
        return
    if is_noop(fields):
        runner.acker.ack(work)
        return
    try:
        raw = decode_entry(fields)
    except MalformedEntry as exc:
        runner.dead_letter(work, exc, reason="malformed")
        return
    binding = listener.binding_for(raw.api_name, raw.event_name)
    if binding is None:  # another event of a per-API stream
        runner.stats.add("skipped")
        runner.acker.ack(work)
        return
    if work.delivery_count > listener.max_deliveries:
        runner.dead_letter(
            work, None,
            reason=f"delivered {work.delivery_count} times (max_deliveries={listener.max_deliveries})",
            event_id=raw.id,
        )
        return
    try:
        runner.validate_incoming(raw)
        kwargs = binding.structure(raw, runner.cast_values_for(raw.api_name))
    except InvalidIncomingEvent as exc:
        runner.dead_letter(work, exc, reason="invalid", event_id=raw.id)
        return
    message = EventMessage(
        raw.id, raw.api_name, raw.event_name, raw.version, kwargs,
        work.stream, work.entry_id.decode(), work.delivery_count,
    )
    log_extra = {
        "event_id": raw.id, "event": message.canonical_name, "listener": listener.name,
        "delivery_count": work.delivery_count,
    }
    started = time.perf_counter()
    try:
        listener.call(message)
    except Exception as exc:
        runner.stats.add("failed")
        _handle_failure(runner, work, message, exc, log_extra)
        return
    finally:
        runner.record_duration(listener.name, time.perf_counter() - started)
    runner.stats.add("processed")
    runner.acker.ack(work)


def _handle_failure(runner: "Runner", work: Work, message: EventMessage, exc: Exception, log_extra: dict[str, Any]) -> None:
    listener = work.listener
    if isinstance(exc, DeadLetter) or isinstance(exc, listener.dead_letter_on):
        logger.error(
            "handler of listener %r raised %s for %s (event %s): dead-lettered without retry",
            listener.name, type(exc).__name__, message.canonical_name, message.id,
            exc_info=exc, extra=log_extra,
        )
        runner.dead_letter(work, exc, reason="handler marked permanent", event_id=message.id)
        return
    if listener.on_error == ON_ERROR_ACK:
        logger.error(
            "handler of listener %r failed for %s (event %s); acked (on_error=ack_and_log)",
            listener.name, message.canonical_name, message.id, exc_info=exc, extra=log_extra,
        )
        runner.acker.ack(work)
        return
    if listener.on_error == ON_ERROR_STOP:
        logger.critical(
            "handler of listener %r failed for %s (event %s); stopping the runner (on_error=stop), "
            "the entry stays pending", listener.name, message.canonical_name, message.id,
            exc_info=exc, extra=log_extra,
        )
        runner.release(work)
        runner.fail_and_stop(f"listener {listener.name!r} handler failed with {type(exc).__name__}: {exc}")
        return
    if work.delivery_count >= listener.max_deliveries:
        logger.error(
            "handler of listener %r failed for %s (event %s) on delivery %d of %d: dead-lettered",
            listener.name, message.canonical_name, message.id, work.delivery_count,
            listener.max_deliveries, exc_info=exc, extra=log_extra,
        )
        runner.dead_letter(work, exc, reason="max deliveries reached", event_id=message.id)
        return
    delay = retry_delay(work.delivery_count, *listener.retry_backoff)
    logger.warning(
        "handler of listener %r failed for %s (event %s, delivery %d of %d): %s: %s; retry in %.1fs",
        listener.name, message.canonical_name, message.id, work.delivery_count,
        listener.max_deliveries, type(exc).__name__, exc, delay, exc_info=exc, extra=log_extra,
    )
    runner.schedule_retry(work, delay)
