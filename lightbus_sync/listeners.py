"""Listener definitions: which handler gets which events, checked at ``listen()`` time.

A listener is one consumer group, ``{service_name}-{listener_name}``, on the stream(s)
of its events. Every listener group sees every event; the processes of one service
share a group's work. ``listen()`` checks that the handler can take the events'
parameters, so a mismatch fails at start-up, not on the first event.
"""

from __future__ import annotations

import datetime
import inspect
import threading
import typing
from typing import Any, Callable, Iterator, Mapping, Optional, Protocol, Sequence, Union

import attrs

from . import parameter_types
from .api import EventDefinition
from .converter import wire_converter
from .errors import DuplicateListener, InvalidIncomingEvent, InvalidListener, LightbusError
from .message import EventMessage
from .names import check_listener_name
from .stream_ids import since_to_id
from .wire import RawEvent



class ListenableEvent(Protocol):
    """What a listener needs of an event (``bus.<api>.<event>``, an ``EventClient``)."""

    definition: EventDefinition
    stream: str

#: ``on_error`` policies for a handler that raises.
ON_ERROR_RETRY = "retry"  # retry with backoff, dead-letter after max_deliveries (default)
ON_ERROR_ACK = "ack_and_log"  # Lightbus's choice: log, ack, move on
ON_ERROR_STOP = "stop"  # Lightbus's default: log and stop the runner
ON_ERROR_POLICIES = (ON_ERROR_RETRY, ON_ERROR_ACK, ON_ERROR_STOP)

Structurer = Callable[[Any], Any]


def _cast_plan(tp: Any) -> Structurer:
    """A function casting a JSON value to ``tp`` (fast paths for common scalars)."""
    tp = parameter_types.normalize(tp)
    if tp is Any or tp is object:
        return lambda value: value
    if tp in (str, int, float, bool):
        exact = tp

        def cast_scalar(value: Any) -> Any:
            if type(value) is exact:
                return value
            return wire_converter.structure(value, exact)

        return cast_scalar
    return lambda value: wire_converter.structure(value, tp)


#: In ``EventBinding.exact``: a parameter whose cast takes any value as it is.
_ANY_VALUE = object()
_MISSING = object()


def _exact_type(tp: Any) -> Any:
    """The one JSON-decoded type that ``_cast_plan(tp)`` returns unchanged (``_ANY_VALUE``
    for any value), or None when casting may change or refuse every value."""
    tp = parameter_types.normalize(tp)
    if tp is Any or tp is object:
        return _ANY_VALUE
    return tp if tp in (str, int, float, bool) else None


@attrs.frozen
class EventBinding:
    """How one event's parameters reach one handler: the cast for each parameter.
    ``exact``: when every parameter has an ``_exact_type``, those (declaration order);
    an entry holding every parameter with exactly its type needs no cast at all."""

    definition: EventDefinition
    casts: Mapping[str, Structurer]
    defaults: Mapping[str, Any]
    required: frozenset[str]
    exact: Optional[Mapping[str, Any]] = attrs.field(default=None, eq=False)
    #: True when ``exact`` comes from the event's declared types alone (no handler
    #: annotation narrowed an ``Any``/``dict``/``list`` parameter): then an entry
    #: matching it also matches the schema generated from the declaration.
    exact_as_declared: bool = attrs.field(default=False, eq=False)

    def structure(self, raw: RawEvent, cast_values: bool = True) -> dict[str, Any]:
        """Incoming checks: no unknown parameter, every required one present, every value
        castable. Raises InvalidIncomingEvent naming the parameter."""
        parameters = raw.parameters
        if cast_values:
            exact_kwargs = self.exact_kwargs(parameters)
            if exact_kwargs is not None:
                return exact_kwargs
        unknown = [name for name in parameters if name not in self.casts]
        if unknown:
            raise InvalidIncomingEvent(
                f"{self.definition.canonical_name}: unexpected parameter(s) {', '.join(map(repr, unknown))}; "
                f"expected {', '.join(self.definition.parameter_names) or 'none'}"
            )
        missing = [name for name in self.required if name not in parameters]
        if missing:
            raise InvalidIncomingEvent(
                f"{self.definition.canonical_name}: missing required parameter(s) {', '.join(map(repr, sorted(missing)))}"
            )
        kwargs: dict[str, Any] = {}
        for name, cast in self.casts.items():
            if name in parameters:
                value = parameters[name]
                if cast_values:
                    try:
                        value = cast(value)
                    except Exception as exc:
                        raise InvalidIncomingEvent(
                            f"{self.definition.canonical_name}: parameter {name!r} value {_short(value)} "
                            f"cannot be cast to {parameter_types.describe(self._type_of(name))}: {_reason(exc)}"
                        ) from None
                kwargs[name] = value
            else:
                kwargs[name] = self.defaults[name]
        return kwargs

    def exact_kwargs(self, parameters: Mapping[str, Any]) -> Optional[dict[str, Any]]:
        """The handler's keyword arguments when ``parameters`` holds every parameter of an
        ``exact`` binding, no other, each already of its type (nothing to cast or check);
        else None."""
        exact = self.exact
        if exact is None or len(parameters) != len(exact):
            return None
        for name, value in parameters.items():
            wanted = exact.get(name, _MISSING)
            if wanted is _MISSING or (wanted is not _ANY_VALUE and type(value) is not wanted):
                return None
        return {name: parameters[name] for name in exact}

    def _type_of(self, name: str) -> Any:
        for parameter in self.definition.parameters:
            if parameter.name == name:
                return parameter.type
        return Any


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _reason(exc: BaseException) -> str:
    import cattrs

    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, format_exception=_format_leaf))
    return f"{type(exc).__name__}: {exc}"


def _format_leaf(exc: BaseException, type_: Any) -> str:
    """cattrs' wording, naming the exception too (a KeyError may be a missing field, or
    raised by the type's own code)."""
    import cattrs

    return f"{cattrs.v.format_exception(exc, type_)} ({type(exc).__name__}: {exc})"


@attrs.frozen(eq=False)
class Listener:
    """One registered listener. ``group`` is the consumer group name."""

    name: str
    group: str
    handler: Callable[..., Any]
    wants_message: bool
    bindings: Mapping[tuple[str, str], EventBinding]  # (api_name, event_name) -> binding
    streams: tuple[str, ...]
    api_names: tuple[str, ...]
    since: Optional[str]
    concurrency: Optional[int]
    max_deliveries: int
    retry_backoff: tuple[float, float]
    dead_letter_on: tuple[type[BaseException], ...]
    on_error: str
    #: ``listen(inbox=engine)``: the handler runs in the inbox's transaction (see inbox.py)
    inbox: Any = None
    #: the handler parameter annotated ``sqlalchemy.orm.Session`` (it gets the inbox's session)
    session_parameter: Optional[str] = None

    def binding_for(self, api_name: str, event_name: str) -> Optional[EventBinding]:
        return self.bindings.get((api_name, event_name))

    def call(self, message: EventMessage, session: Any = None) -> Any:
        kwargs = message.kwargs
        if self.session_parameter is not None:
            kwargs = {**kwargs, self.session_parameter: session}
        if self.wants_message:
            return self.handler(message, **kwargs)
        return self.handler(**kwargs)


def since_to_stream_id(since: Union[None, str, datetime.datetime]) -> Optional[str]:
    """``since=`` as a stream id: a datetime becomes ``<unix ms>-0``; ``None`` means ``$``."""
    try:
        return since_to_id(since)
    except ValueError:
        raise InvalidListener(
            f"since={since!r}: use a stream id ('0' for the whole stream, '1700000000000-0') "
            f"or a datetime"
        ) from None


def _wants_message(handler: Callable[..., Any], parameters: Sequence[inspect.Parameter]) -> bool:
    if not parameters:
        return False
    first = parameters[0]
    if first.kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return False
    if first.name == "event_message":
        return True
    annotation = first.annotation
    if annotation is EventMessage or annotation == "EventMessage":
        return True
    try:
        hints = typing.get_type_hints(handler)
    except Exception:
        return False
    return hints.get(first.name) is EventMessage


def session_parameter(handler: Callable[..., Any]) -> Optional[str]:
    """The name of ``handler``'s parameter annotated ``sqlalchemy.orm.Session`` (or a
    subclass), if any: it receives the inbox's session, not an event parameter."""
    hints = _handler_hints(handler)
    for name, hint in hints.items():
        if isinstance(hint, type) and hint.__module__.startswith("sqlalchemy"):
            from sqlalchemy.orm import Session

            if issubclass(hint, Session):
                return name
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return None
    for parameter in parameters:  # a string annotation that could not be resolved
        annotation = parameter.annotation
        if isinstance(annotation, str):
            annotation = annotation.strip("'\"")
        if parameter.name not in hints and isinstance(annotation, str) and (
                annotation == "Session" or annotation.endswith(".Session")):
            return parameter.name
    return None


def _handler_hints(handler: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(handler)
    except Exception:
        return {}


def _describe_handler(handler: Callable[..., Any], signature: inspect.Signature) -> str:
    name = getattr(handler, "__qualname__", None) or repr(handler)
    return f"{name}{signature}"


def bind_handler(handler: Callable[..., Any], definition: EventDefinition) -> tuple[bool, EventBinding]:
    """Check that ``handler`` can take ``definition``'s parameters; return
    (wants_message, binding). Raises InvalidListener naming both sides."""
    if not callable(handler):
        raise InvalidListener(f"handler for {definition.canonical_name} is not callable: {handler!r}")
    # The instance's __call__ method itself is checked here, not whether it is callable.
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None)):  # noqa: B004
        # Called on a worker thread, it would return an un-awaited coroutine and be acked.
        raise InvalidListener(
            f"handler {handler!r} for {definition.canonical_name} is an async function: lightbus_sync "
            f"runs handlers on threads and cannot await it (Lightbus 1.x could); make it a plain def"
        )
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError) as exc:
        raise InvalidListener(f"cannot read the signature of handler {handler!r}: {exc}") from None
    params = list(signature.parameters.values())
    wants_message = _wants_message(handler, params)
    if wants_message:
        params = params[1:]
    session_name = session_parameter(handler)
    params = [p for p in params if p.name != session_name]
    accepts_any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    keyword_names = {
        p.name for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    required = {
        p.name for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    event_names = set(definition.parameter_names)
    not_accepted = [] if accepts_any_keyword else sorted(event_names - keyword_names)
    not_given = sorted(required - event_names)
    positional_only = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    if not_accepted or not_given or positional_only:
        problems = []
        if not_accepted:
            problems.append(f"it does not accept {', '.join(map(repr, not_accepted))}")
        if not_given:
            problems.append(f"it requires {', '.join(map(repr, not_given))}, which the event does not have")
        if positional_only:
            problems.append(f"positional-only parameter(s) {', '.join(map(repr, positional_only))} cannot be given by name")
        raise InvalidListener(
            f"handler {_describe_handler(handler, signature)} cannot receive "
            f"{definition.canonical_name}({', '.join(definition.parameter_names)}): " + "; ".join(problems)
        )
    hints = _handler_hints(handler)
    casts: dict[str, Structurer] = {}
    exact: Optional[dict[str, Any]] = {}
    as_declared = True
    for parameter in definition.parameters:
        target = parameter.type
        richer = hints.get(parameter.name)
        if richer is not None and (target is Any or target in (dict, list)):
            try:
                parameter_types.check_supported(richer, f"handler {handler!r} parameter {parameter.name!r}")
                target = richer
                as_declared = False
            except LightbusError:
                pass
        casts[parameter.name] = _cast_plan(target)
        kind = _exact_type(target)
        if exact is not None:
            if kind is None:
                exact = None
            else:
                exact[parameter.name] = kind
    defaults = {p.name: p.default for p in definition.parameters if not p.is_required}
    required_params = frozenset(p.name for p in definition.parameters if p.is_required)
    return wants_message, EventBinding(definition, casts, defaults, required_params, exact,
                                       exact_as_declared=exact is not None and as_declared)


class ListenerRegistry:
    """The listeners registered on one bus, by listener name (names are unique);
    ``service_name`` names their consumer groups (``<service>-<listener>``)."""

    def __init__(self, service_name: str) -> None:
        self._service_name = service_name
        self._listeners: dict[str, Listener] = {}
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Listener]:
        return iter(list(self._listeners.values()))

    def __len__(self) -> int:
        return len(self._listeners)

    def add(
        self,
        events: Sequence[ListenableEvent],
        handler: Callable[..., Any],
        *,
        listener_name: Optional[str],
        since: Union[None, str, datetime.datetime] = None,
        concurrency: Optional[int] = None,
        max_deliveries: int = 10,
        retry_backoff: tuple[float, float] = (1.0, 60.0),
        dead_letter_on: Sequence[type[BaseException]] = (),
        on_error: str = ON_ERROR_RETRY,
        inbox: Any = None,
        inbox_retention: Optional[float] = None,
    ) -> Listener:
        """Register ``handler`` for ``events`` as listener ``listener_name``.

        - ``listener_name`` (required): names the consumer group; unique per bus.
        - ``since``: where a NEW group starts: ``None`` = only events fired from now on,
          ``'0'`` = the whole stream, a stream id, or a datetime.
        - ``concurrency``: run this listener on its own ``concurrency`` threads;
          ``concurrency=1`` handles its events one at a time in stream order.
        - ``max_deliveries``, ``retry_backoff=(min_s, max_s)``, ``dead_letter_on``,
          ``on_error``: what happens when the handler raises (see the runner docs).
          ``max_deliveries`` counts handler runs, including runs that never finished
          because the process died: an entry that kills its process is dead-lettered too.
        - ``inbox``: a SQLAlchemy Engine; each delivery runs the handler in a transaction
          that records the event for this listener, so a redelivered event is skipped
          (see ``lightbus_sync.inbox``). A handler parameter annotated
          ``sqlalchemy.orm.Session`` gets that transaction's session.
          ``inbox_retention`` (seconds, default 7 days): how long handled events are
          remembered at least.
        """
        if listener_name is None:
            raise InvalidListener(
                "listen() needs listener_name=..., e.g. listen(handler, listener_name='store_user'): "
                "it names the consumer group, so it must be stable across restarts"
            )
        check_listener_name(listener_name)
        if not events:
            raise InvalidListener(f"listener {listener_name!r} has no events to listen to")
        if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
            raise InvalidListener(f"concurrency must be a positive int or None, got {concurrency!r}")
        if not isinstance(max_deliveries, int) or max_deliveries < 1:
            raise InvalidListener(f"max_deliveries must be an int >= 1, got {max_deliveries!r}")
        low, high = retry_backoff
        if not (0 <= low <= high):
            raise InvalidListener(f"retry_backoff must be (min, max) with 0 <= min <= max, got {retry_backoff!r}")
        if on_error not in ON_ERROR_POLICIES:
            raise InvalidListener(f"on_error must be one of {', '.join(ON_ERROR_POLICIES)}, got {on_error!r}")
        for exc_type in dead_letter_on:
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise InvalidListener(f"dead_letter_on takes exception classes, got {exc_type!r}")
        listener_inbox = _make_inbox(listener_name, inbox, inbox_retention)
        session_name = session_parameter(handler) if callable(handler) else None
        if session_name is not None and listener_inbox is None:
            raise InvalidListener(
                f"listener {listener_name!r}: handler parameter {session_name!r} is annotated "
                f"sqlalchemy.orm.Session, which only an inbox gives: listen(..., inbox=engine)"
            )
        bindings: dict[tuple[str, str], EventBinding] = {}
        wants = set()
        streams: list[str] = []
        api_names: list[str] = []
        for event in events:
            wants_message, binding = bind_handler(handler, event.definition)
            wants.add(wants_message)
            bindings[(event.definition.api_name, event.definition.name)] = binding
            if event.stream not in streams:
                streams.append(event.stream)
            if event.definition.api_name not in api_names:
                api_names.append(event.definition.api_name)
        listener = Listener(
            name=listener_name,
            group=f"{self._service_name}-{listener_name}",
            handler=handler,
            wants_message=wants.pop(),
            bindings=bindings,
            streams=tuple(streams),
            api_names=tuple(api_names),
            since=since_to_stream_id(since),
            concurrency=concurrency,
            max_deliveries=max_deliveries,
            retry_backoff=(float(low), float(high)),
            dead_letter_on=tuple(dead_letter_on),
            on_error=on_error,
            inbox=listener_inbox,
            session_parameter=session_name,
        )
        with self._lock:
            if listener_name in self._listeners:
                raise DuplicateListener(
                    f"listener name {listener_name!r} is already used on this bus (by "
                    f"{self._listeners[listener_name].handler!r}); each listener needs its own name"
                )
            self._listeners[listener_name] = listener
        return listener


def _make_inbox(listener_name: str, engine: Any, retention: Optional[float]) -> Any:
    """The ``Inbox`` of ``listen(inbox=engine, inbox_retention=...)``, or None."""
    if engine is None:
        if retention is not None:
            raise InvalidListener(f"listener {listener_name!r}: inbox_retention needs inbox=engine")
        return None
    from .inbox import BaseInbox

    if isinstance(engine, BaseInbox):  # made by a framework (the Django app's database alias inbox)
        if retention is not None:
            raise InvalidListener(f"listener {listener_name!r}: inbox_retention goes to the inbox given, "
                                  f"{engine!r}, when it is made")
        return engine
    try:
        from .inbox import DEFAULT_RETENTION, Inbox
    except ImportError:  # pragma: no cover
        raise InvalidListener("inbox= needs SQLAlchemy 2: pip install 'lightbus_sync[sql]'") from None
    try:
        return Inbox(engine, DEFAULT_RETENTION if retention is None else retention)
    except (TypeError, ValueError) as exc:
        raise InvalidListener(f"listener {listener_name!r}: {exc}") from None
