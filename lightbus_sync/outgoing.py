"""The outgoing side of one event: a ``fire()`` call checked and turned into its entry's
wire fields, compiled once per event.

``OutgoingEvent.encode`` gives exactly what the general path gives (``EventDefinition.bind``,
``wire.to_plain``, the schema check, ``wire.encode_event``, the ``max_entry_size`` check):
the same values, the same fields in the same order, byte for byte, and for a bad call the
same error. A call whose every value has a plain type its parameter accepts (``str``,
``int``, ``float``, ``bool``, ``None``, as declared) takes a path planned once per
event; any other call, and every call that would fail, takes the general one.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

from . import parameter_types
from .api import EventDefinition, Parameter
from .errors import InvalidFireCall, InvalidParameterValue, SchemaMismatch
from .wire import LITERAL_JSON, PARAMETER_PREFIX, encode_event, entry_size, new_event_ids, quote_ascii, to_plain

#: The compiled validator of the event's schema on the bus.
Validator = Callable[[Any], Any]
#: Returns the event's validator (None: no schema known), asked once per call or batch.
ValidatorSource = Callable[[], Optional[Validator]]
#: A value's JSON text, for the exact types whose JSON is known without the encoder.
TextOf = Callable[[Any], str]


def _float_text(value: float) -> str:
    """``float`` JSON as ``json`` writes it; a non-finite one is refused by the general path."""
    if math.isfinite(value):
        return float.__repr__(value)
    raise ValueError("not finite")


#: Exact type -> its JSON text, for values that are already plain (``to_plain`` keeps them).
_TEXT_OF: dict[type, TextOf] = {
    str: quote_ascii,
    bool: LITERAL_JSON.__getitem__,
    type(None): LITERAL_JSON.__getitem__,
    int: int.__repr__,
    float: _float_text,
}
#: Declared type -> the exact types of values it certainly accepts, as they are.
_SURE: dict[Any, tuple[type, ...]] = {
    Any: tuple(_TEXT_OF), object: tuple(_TEXT_OF),
    str: (str,), bool: (bool,), int: (int,), float: (int, float), type(None): (type(None),),
}
#: Sample values of each exact type: the parameter's own checker must accept them too.
_SAMPLES: dict[type, tuple[Any, ...]] = {
    str: ("", "x"), bool: (True, False), type(None): (None,), int: (0, 1, -1), float: (0.0, 1.5, -1.5),
}


def _sure_types(tp: Any) -> set[type]:
    """The exact types ``_TEXT_OF`` knows whose every value a parameter of type ``tp``
    accepts (for a union, those of its members); empty for any other type."""
    tp = parameter_types.normalize(tp)
    try:
        sure = _SURE.get(tp)
    except TypeError:  # an unhashable annotation
        return set()
    if sure is not None:
        return set(sure)
    members = parameter_types.union_members(tp)
    if members is None:
        return set()
    return set().union(*(_sure_types(member) for member in members))


class EncodedEvent(NamedTuple):
    """A checked and encoded event, not yet written: its id, the bound values and the
    entry's wire fields."""

    event_id: str
    values: dict[str, Any]
    fields: dict[str, str]


_new_tuple = tuple.__new__  # EncodedEvent(...) without NamedTuple's Python-level __new__


class _Planned(NamedTuple):
    """One parameter on the planned path."""

    name: str
    key: str  # its field name, ``:<name>``
    text_of: dict[type, TextOf]  # the exact types its checker accepts, each with its JSON
    has_default: bool  # a default whose value and JSON are below
    default: Any
    default_text: str


class _Unplanned(Exception):
    """Internal: the call leaves the planned path (the general one decides)."""


def _plan(parameter: Parameter) -> _Planned:
    checker = parameter_types.make_checker(parameter.type)
    accepted = {
        kind: _TEXT_OF[kind] for kind in _sure_types(parameter.type)
        if all(checker(sample) is None for sample in _SAMPLES[kind])
    }
    default, default_text = parameter.default, ""
    has_default = not parameter.is_required and type(default) in accepted
    if has_default:
        try:
            default_text = accepted[type(default)](default)
        except ValueError:  # no JSON for it (a NaN): a call leaving it out takes the general path
            has_default = False
    return _Planned(parameter.name, PARAMETER_PREFIX + parameter.name, accepted, has_default, default, default_text)


#: Event ids made ahead, a batch at a time (``list.pop`` and ``extend`` are atomic: safe
#: across threads), for the process ``_spare_pid``. A forked child drops the ones it
#: inherited, which its parent uses: at the fork, and (for a fork that skips Python's
#: hooks) on its first id.
_spare_ids: list[str] = []
_spare_pid = os.getpid()
_SPARE_BATCH = 64
os.register_at_fork(after_in_child=_spare_ids.clear)


def next_event_id() -> str:
    """A new event id, as ``wire.new_event_id()`` makes one, at a fraction of its cost."""
    global _spare_pid
    if _spare_pid != os.getpid():
        _spare_ids.clear()
        _spare_pid = os.getpid()
    while True:
        try:
            return _spare_ids.pop()
        except IndexError:
            _spare_ids.extend(new_event_ids(_SPARE_BATCH))


class OutgoingEvent:
    """One event's outgoing check and encoding (see the module docstring)."""

    def __init__(self, definition: EventDefinition, validate: bool, validator: ValidatorSource,
                 max_entry_size: int) -> None:
        self.definition = definition
        self._validate = validate
        self._validator = validator
        self._max_entry_size = max_entry_size
        self._planned = tuple(_plan(p) for p in definition.parameters)
        self._metadata = (definition.api_name, definition.name, str(definition.version))
        # ``entry_size`` of an entry on the planned path (every parameter is there), but
        # for its event id and parameter values.
        self._fixed_size = sum(map(len, ("id", "api_name", "event_name", "version", *self._metadata))) + sum(
            len(p.key) for p in self._planned)

    def encode(self, args: tuple[Any, ...], kwargs: Mapping[str, Any],
               event_id: Optional[str] = None) -> EncodedEvent:
        """Check a ``fire()`` call and build its entry (``event_id``, else a new one).
        Raises the ``InvalidFireCall`` subclass the call deserves; writes nothing."""
        validator = self._validator() if self._validate else None
        if not args:
            try:
                return self._encode_planned(kwargs, event_id or next_event_id(), validator)
            except (_Unplanned, ValueError):
                pass
        return self._encode_general(args, dict(kwargs), event_id, validator)

    def encode_many(self, calls: Iterable[Any]) -> list[EncodedEvent]:
        """``encode()`` each of ``fire_many()``'s calls (mappings of parameters), with one
        look-up of the schema and one batch of event ids. A bad call raises, its index in
        the message (the same ``InvalidFireCall`` subclass as for ``fire()``)."""
        calls = calls if isinstance(calls, list) else list(calls)
        validator = self._validator() if self._validate else None
        planned, general = self._encode_planned, self._encode_general
        prepared = []
        for index, (kwargs, event_id) in enumerate(zip(calls, new_event_ids(len(calls)))):
            if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
                raise InvalidFireCall(
                    f"{self.definition.canonical_name}.fire_many() takes mappings of parameters "
                    f"(dicts); item {index} is {type(kwargs).__name__} {kwargs!r}; nothing was fired"
                )
            try:
                try:
                    prepared.append(planned(kwargs, event_id, validator))
                except (_Unplanned, ValueError):
                    prepared.append(general((), dict(kwargs), event_id, validator))
            except InvalidFireCall as exc:
                raise type(exc)(f"fire_many() item {index}: {exc}; nothing was fired") from None
        return prepared

    def _encode_planned(self, kwargs: Mapping[str, Any], event_id: str,
                        validator: Optional[Validator]) -> EncodedEvent:
        api_name, event_name, version = self._metadata
        fields = {"id": event_id, "api_name": api_name, "event_name": event_name, "version": version}
        values: dict[str, Any] = {}
        given = 0
        size = self._fixed_size + len(event_id)
        missing = kwargs  # a marker no value can be
        for name, key, text_of, has_default, default, default_text in self._planned:
            value = kwargs.get(name, missing)
            if value is missing:
                if not has_default:
                    raise _Unplanned
                values[name] = default
                fields[key] = default_text
                size += len(default_text)
                continue
            given += 1
            to_text = text_of.get(type(value))
            if to_text is None:
                raise _Unplanned
            values[name] = value
            fields[key] = text = to_text(value)
            size += len(text)
        if given != len(kwargs):
            raise _Unplanned  # an unexpected parameter
        if validator is not None:
            self._check_schema(values, validator)  # the values are plain already
        if self._max_entry_size and size > self._max_entry_size:
            raise _Unplanned  # the general path says by how much
        return _new_tuple(EncodedEvent, (event_id, values, fields))

    def _encode_general(self, args: tuple[Any, ...], kwargs: dict[str, Any], event_id: Optional[str],
                        validator: Optional[Validator]) -> EncodedEvent:
        definition = self.definition
        values = definition.bind(args, kwargs)
        plain = to_plain(definition.api_name, definition.name, values)
        if validator is not None:
            self._check_schema(plain, validator)
        event_id = event_id or next_event_id()
        fields = encode_event(event_id, definition.api_name, definition.name, definition.version, plain)
        limit = self._max_entry_size
        if limit and entry_size(fields) > limit:
            largest = max(plain, key=lambda name: len(fields[PARAMETER_PREFIX + name]))
            raise InvalidParameterValue(
                f"{definition.canonical_name}: the event is {entry_size(fields):,} bytes, over max_entry_size "
                f"({limit:,}; apis.<name>.event_transport.redis.max_entry_size); "
                f"the largest parameter is {largest!r} ({len(fields[PARAMETER_PREFIX + largest]):,} bytes)"
            )
        return EncodedEvent(event_id, values, fields)

    def _check_schema(self, plain: dict[str, Any], validator: Validator) -> None:
        try:
            validator(plain)
        except Exception as exc:  # fastjsonschema.JsonSchemaException
            raise SchemaMismatch(
                f"{self.definition.canonical_name}: parameters do not match the schema on the bus: "
                f"{getattr(exc, 'message', exc)}"
            ) from None
