"""What happens to one entry: decode, check, call the handler, then ack, retry or
dead-letter. Runs on a worker thread; never raises."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..backoff import backoff_delay
from ..errors import DeadLetter, InvalidIncomingEvent, MalformedEntry
from ..listeners import ON_ERROR_ACK, ON_ERROR_STOP
from ..message import EventMessage
from ..wire import decode_entry, entry_size, is_noop
from .state import Work

if TYPE_CHECKING:
    from .runner import Runner

logger = logging.getLogger("lightbus_sync.runner")


def describe_error(error: BaseException, with_type: bool = True) -> str:
    """``Type: message`` for logs and dead letters; never raises (an exception's
    ``__str__`` may)."""
    try:
        text = str(error)
    except Exception:
        text = f"<{type(error).__name__} whose str() failed>"
    return f"{type(error).__name__}: {text}" if with_type else text


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
    limit = runner.settings_of(listener).max_entry_size
    if limit and entry_size(fields) > limit:
        runner.dead_letter(work, None, reason=f"too large: {entry_size(fields):,} bytes > max_entry_size {limit:,}")
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
    if work.delivery_count == 1:
        _run(runner, work, message, log_extra, run=1)
        return
    # Redelivered: an earlier run failed, or its process died (perhaps killed by this
    # very entry). Runs of redelivered entries are counted in Redis (deliveries are not
    # runs: a crashed process's fetched-ahead entries were delivered, never started)
    # and take turns, so a poison entry that kills its process takes no other counted
    # run with it. Past max_deliveries runs (the first delivery's counted as one), it is
    # dead-lettered without running again.
    with runner.redelivery_turn(work) as turn:
        if not turn:
            runner.give_back([work])
            return
        started = runner.count_attempt(work)
        if started is not None and started >= listener.max_deliveries:
            runner.dead_letter(
                work, None,
                reason=f"run {started} times without finishing (max_deliveries={listener.max_deliveries}): "
                       f"it may crash its process",
                event_id=raw.id,
            )
            return
        _run(runner, work, message, log_extra, run=work.delivery_count if started is None else started + 1)


def _run(runner: "Runner", work: Work, message: EventMessage, log_extra: dict[str, Any], run: int) -> None:
    """Call the handler (its ``run``-th run) and settle the entry: ack, retry or
    dead-letter."""
    listener = work.listener
    started = time.perf_counter()
    try:
        listener.call(message)
    except BaseException as exc:  # SystemExit too: a handler never ends its worker thread
        runner.stats.add("failed")
        runner.record_outcome(listener.name, "error")
        _handle_failure(runner, work, message, exc, log_extra, run)
        return
    finally:
        runner.record_duration(listener.name, time.perf_counter() - started)
    runner.stats.add("processed")
    runner.record_outcome(listener.name, "ok")
    if work.delivery_count == 1:
        runner.acker.ack(work)
    else:
        runner.acker.ack_now(work)  # before the next redelivered run, which might kill the process


def _handle_failure(
    runner: "Runner", work: Work, message: EventMessage, exc: BaseException, log_extra: dict[str, Any], run: int
) -> None:
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
        runner.fail_and_stop(f"listener {listener.name!r} handler failed with {describe_error(exc)}")
        return
    if run >= listener.max_deliveries:
        logger.error(
            "handler of listener %r failed for %s (event %s) on run %d of %d: dead-lettered",
            listener.name, message.canonical_name, message.id, run,
            listener.max_deliveries, exc_info=exc, extra=log_extra,
        )
        runner.dead_letter(work, exc, reason="max deliveries reached", event_id=message.id)
        return
    low, high = listener.retry_backoff
    delay = backoff_delay(run, low, high, jitter=True)
    logger.warning(
        "handler of listener %r failed for %s (event %s, run %d of %d): %s; retry in %.1fs",
        listener.name, message.canonical_name, message.id, run,
        listener.max_deliveries, describe_error(exc), delay, exc_info=exc, extra=log_extra,
    )
    runner.schedule_retry(work, delay)
