"""OpenTelemetry traces of fires and handler runs, as an observer of the bus.

``instrument(bus, propagate=("shop",))`` adds a ``TracingObserver`` (needs
``pip install 'lightbus_sync[otel]'``, which brings ``opentelemetry-api``; the SDK and
an exporter are the application's choice, configured as usual for OpenTelemetry).

Spans, following OpenTelemetry's messaging semantic conventions:

- ``fire <stream>`` (kind PRODUCER) around the write of each ``fire()``, and
  ``fire_many <stream>`` around each ``fire_many()`` (with
  ``messaging.batch.message_count``);
- ``handle <stream>`` (kind CONSUMER) around each handler run, with the consumer group,
  the listener and the delivery count; an exception is recorded and sets the status to
  ERROR. A run that will be retried gets the event ``lightbus.retry_scheduled`` (with
  the delay), one that is dead-lettered ``lightbus.dead_lettered`` (with the reason).
  An entry dead-lettered before any handler ran (malformed, too large, invalid, too
  many runs) gets a CONSUMER span of its own carrying that event.

Attributes: ``messaging.system`` (``lightbus``), ``messaging.destination.name`` (the
stream), ``messaging.operation.type`` (``send``/``process``),
``messaging.operation.name`` (``fire``/``fire_many``/``handle``),
``messaging.message.id`` (the event id), ``messaging.consumer.group.name``, and, for
what the conventions name per system, ``messaging.lightbus.message.delivery_count``,
``messaging.lightbus.listener``, ``messaging.lightbus.entry_id``,
``messaging.lightbus.api_name`` and ``messaging.lightbus.event_name``.

Propagation is opt-in per API (``propagate``): the entries of those APIs carry the
producer span's W3C ``traceparent`` (and ``tracestate`` when set) as two more fields,
and a listener that finds them continues the trace (its span's parent is the producer
span); without them the consumer span starts a trace of its own. A Lightbus 1.1.2
consumer stops on an entry with these fields (``TypeError`` in its ``EventMessage``),
so turn it on only for APIs that no Lightbus process consumes, and whose
lightbus_sync consumers are of a version that reads them.

Without a configured SDK, OpenTelemetry's API hands out non-recording spans: the
observer then sets no attribute and writes no field. Without OpenTelemetry installed
nothing here is imported unless ``instrument`` is called.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, ContextManager, Iterable, Mapping, Optional

from .errors import LightbusError
from .message import EventMessage
from .observers import DeliveryInfo, FireInfo, Observer

SYSTEM = "lightbus"
INSTRUMENTATION_NAME = "lightbus_sync"
EVENT_RETRY = "lightbus.retry_scheduled"
EVENT_DEAD_LETTERED = "lightbus.dead_lettered"
_NULL = contextlib.nullcontext()


def _import_otel() -> Any:
    try:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        raise LightbusError("tracing needs OpenTelemetry: pip install 'lightbus_sync[otel]'") from None
    return context, trace, TraceContextTextMapPropagator


class TracingObserver(Observer):
    """Spans for fires and handler runs (see the module docs). ``propagate``: names of
    the APIs whose entries carry the trace context. ``tracer_provider``: the provider
    to use (default: OpenTelemetry's global one, looked up at each span, so one set
    after this observer was made is used)."""

    def __init__(self, *, propagate: Iterable[str] = (), tracer_provider: Any = None) -> None:
        if isinstance(propagate, str):
            raise TypeError(f"propagate: expected a list of API names, got the string {propagate!r}")
        names = list(propagate)
        for name in names:
            if not isinstance(name, str) or not name:
                raise TypeError(f"propagate: expected API names (non-empty strings), got {name!r}")
        context, trace, propagator_class = _import_otel()
        self._context = context
        self._trace = trace
        self._kinds = (trace.SpanKind.PRODUCER, trace.SpanKind.CONSUMER)
        self._propagator = propagator_class()
        self.propagate = frozenset(names)
        self._tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)
        #: With the global provider: is one configured yet? Checked at most once a second
        #: until it is (OpenTelemetry allows setting it once), so an unconfigured
        #: process pays a clock read per fire, not a no-op span.
        self._configured = tracer_provider is not None
        self._next_check = 0.0
        self._open: dict[tuple[str, str, str], tuple[Any, int]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def _active(self) -> bool:
        if self._configured:
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + 1.0
        self._configured = not isinstance(self._trace.get_tracer_provider(), self._trace.ProxyTracerProvider)
        return self._configured

    # --- producer ----------------------------------------------------------------------

    def firing(self, fire: FireInfo) -> ContextManager[Optional[Mapping[str, str]]]:
        if not self._active():
            return _NULL
        attributes = {
            "messaging.system": SYSTEM,
            "messaging.destination.name": fire.stream,
            "messaging.operation.type": "send",
            "messaging.operation.name": fire.operation,
            "messaging.lightbus.api_name": fire.api_name,
            "messaging.lightbus.event_name": fire.event_name,
        }
        if fire.operation == "fire":
            attributes["messaging.message.id"] = fire.event_ids[0]
        else:
            attributes["messaging.batch.message_count"] = len(fire.event_ids)
        span = self._tracer.start_span(f"{fire.operation} {fire.stream}", kind=self._kinds[0], attributes=attributes)
        if not span.is_recording():
            return _NotRecording(span)
        carrier: Optional[dict[str, str]] = None
        if fire.api_name in self.propagate:
            carrier = {}
            self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        return _Firing(self, span, carrier)

    # --- consumer ----------------------------------------------------------------------

    def handling(self, delivery: DeliveryInfo, message: EventMessage) -> ContextManager[Any]:
        if not self._active():
            return _NULL
        self._end_left_over()
        parent = None
        if message.trace_context:
            parent = self._propagator.extract(message.trace_context)
        span = self._tracer.start_span(f"handle {delivery.stream}", context=parent, kind=self._kinds[1],
                                       attributes=self._delivery_attributes(delivery))
        if not span.is_recording():
            return _NotRecording(span)
        token = self._context.attach(self._trace.set_span_in_context(span))
        return _Handling(self, span, token, delivery)

    def _delivery_attributes(self, delivery: DeliveryInfo) -> dict[str, Any]:
        attributes = {
            "messaging.system": SYSTEM,
            "messaging.destination.name": delivery.stream,
            "messaging.operation.type": "process",
            "messaging.operation.name": "handle",
            "messaging.consumer.group.name": delivery.group,
            "messaging.lightbus.listener": delivery.listener,
            "messaging.lightbus.entry_id": delivery.entry_id,
            "messaging.lightbus.message.delivery_count": delivery.delivery_count,
        }
        if delivery.event_id:
            attributes["messaging.message.id"] = delivery.event_id
        if delivery.api_name:
            attributes["messaging.lightbus.api_name"] = delivery.api_name
            attributes["messaging.lightbus.event_name"] = delivery.event_name
        return attributes

    def _keep_open(self, delivery: DeliveryInfo, span: Any) -> None:
        """A failed run's span waits for its retry or dead-letter event; it ends at the
        time the handler returned, whenever it is closed."""
        key = (delivery.stream, delivery.group, delivery.entry_id)
        with self._lock:
            self._open[key] = (span, time.time_ns())
        self._local.left_over = key

    def _take(self, delivery: DeliveryInfo) -> Optional[tuple[Any, int]]:
        with self._lock:
            return self._open.pop((delivery.stream, delivery.group, delivery.entry_id), None)

    def _end_left_over(self) -> None:
        """A failed run on this thread that no retry or dead letter followed
        (``on_error='ack_and_log'`` or ``'stop'``): end its span now."""
        key = getattr(self._local, "left_over", None)
        if key is None:
            return
        self._local.left_over = None
        with self._lock:
            found = self._open.pop(key, None)
        if found is not None:
            found[0].end(end_time=found[1])

    def on_retried(self, delivery: DeliveryInfo, delay: float) -> None:
        found = self._take(delivery)
        if found is None:
            return
        span, ended = found
        span.add_event(EVENT_RETRY, {"lightbus.retry.delay_s": delay,
                                     "messaging.lightbus.message.delivery_count": delivery.delivery_count})
        span.end(end_time=ended)

    def on_dead_lettered(self, delivery: DeliveryInfo, reason: str) -> None:
        found = self._take(delivery)
        if found is None:  # dead-lettered before any handler ran: a span of its own
            if not self._active():
                return
            span = self._tracer.start_span(f"handle {delivery.stream}", kind=self._kinds[1],
                                           attributes=self._delivery_attributes(delivery))
            if not span.is_recording():
                span.end()
                return
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, reason))
            found = (span, None)
        span, ended = found
        span.add_event(EVENT_DEAD_LETTERED, {"lightbus.dead_letter.reason": reason})
        span.end(end_time=ended)

    def on_stopped(self, consumer: str, clean: bool) -> None:
        with self._lock:
            left, self._open = list(self._open.values()), {}
        for span, ended in left:
            span.end(end_time=ended)


class _NotRecording:
    """No SDK (or not sampled): nothing to record, no field to add."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: Any) -> None:
        self.span.end()


class _Firing:
    """The PRODUCER span of one write (not made current: nothing runs inside it but the
    write, and attaching a context costs more than the write's own spans would tell)."""

    __slots__ = ("observer", "span", "carrier")

    def __init__(self, observer: TracingObserver, span: Any, carrier: Optional[dict[str, str]]) -> None:
        self.observer, self.span, self.carrier = observer, span, carrier

    def __enter__(self) -> Optional[dict[str, str]]:
        return self.carrier

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        if exc is not None:
            _record_error(self.observer, self.span, exc)
        self.span.end()


class _Handling:
    __slots__ = ("observer", "span", "token", "delivery")

    def __init__(self, observer: TracingObserver, span: Any, token: Any, delivery: DeliveryInfo) -> None:
        self.observer, self.span, self.token, self.delivery = observer, span, token, delivery

    def __enter__(self) -> Any:
        return self.span

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        observer = self.observer
        observer._context.detach(self.token)
        if exc is None:
            self.span.end()
            return
        _record_error(observer, self.span, exc)
        observer._keep_open(self.delivery, self.span)


def _record_error(observer: TracingObserver, span: Any, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_attribute("error.type", f"{type(exc).__module__}.{type(exc).__qualname__}")
    span.set_status(observer._trace.Status(observer._trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def instrument(bus: Any, *, propagate: Iterable[str] = (), tracer_provider: Any = None) -> TracingObserver:
    """Trace ``bus``'s fires and the handler runs of its runners; returns the observer
    (``bus.observers.remove(observer)`` stops it). See the module docs."""
    observer = TracingObserver(propagate=propagate, tracer_provider=tracer_provider)
    bus.add_observer(observer)
    return observer
