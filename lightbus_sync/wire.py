"""The Lightbus 1.x wire format on Redis Streams: stream keys, entry fields, decoding.

An entry is exactly four metadata fields (``id``, ``api_name``, ``event_name``,
``version``; raw UTF-8, never JSON) followed by one ``:<parameter>`` field per
parameter holding JSON (sorted keys, Python's default separators, ASCII-escaped).
A "noop" entry (one empty field with an empty value) only creates a stream.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, NamedTuple, Optional

from .converter import wire_converter
from .errors import InvalidParameterValue, MalformedEntry
from .keys import STREAM_PER_API, STREAM_PER_EVENT, stream_key  # noqa: F401 (their old home: kept importable)

METADATA_FIELDS = ("id", "api_name", "event_name", "version")
PARAMETER_PREFIX = ":"
#: Fields Lightbus's reader skips: an empty key, and ``native_id`` (it takes the entry id).
_IGNORED_FIELDS = frozenset({"", "native_id"})
#: W3C trace context fields an entry may carry (written only by APIs that opt in to
#: propagation: a Lightbus 1.1.2 consumer stops on them, see lightbus_sync.tracing).
TRACE_FIELDS = frozenset({"traceparent", "tracestate"})


_dumps = json.JSONEncoder(sort_keys=True, allow_nan=False).encode
_FAST_TYPES = (str, int, float, bool, type(None))
#: The JSON of the commonest values, produced exactly as ``_dumps`` would, but cheaper
#: (``outgoing`` plans fires with them too).
quote_ascii = json.encoder.encode_basestring_ascii
LITERAL_JSON = {True: "true", False: "false", None: "null"}
#: A hex digit -> the RFC 4122 variant digit with the same low two bits.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_event_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUID strings, what ``str(uuid.uuid4())`` gives, from
    one read of random bytes."""
    digits = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        d = digits[start:start + 32]
        ids.append(f"{d[:8]}-{d[8:12]}-4{d[13:16]}-{_VARIANT[d[16]]}{d[17:20]}-{d[20:]}")
    return ids


def new_event_id() -> str:
    """One ``new_event_ids`` id."""
    return new_event_ids(1)[0]


def to_plain(api_name: str, event_name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values as JSON-able data, by the wire rules (see converter). Raises
    InvalidParameterValue naming the parameter if a value cannot be turned into JSON."""
    plain: dict[str, Any] = {}
    for name, value in values.items():
        if type(value) in _FAST_TYPES:
            plain[name] = value
            continue
        try:
            plain[name] = wire_converter.unstructure(value)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterValue(
                f"{api_name}.{event_name}: parameter {name!r} cannot be encoded as JSON: {exc}"
            ) from exc
    return plain


def encode_event(
    event_id: str, api_name: str, event_name: str, version: int, plain: Mapping[str, Any]
) -> dict[str, str]:
    """The fields of one entry, in wire order, from JSON-able values (``to_plain``).
    Raises InvalidParameterValue (naming the parameter) for values JSON cannot hold."""
    fields = {"id": event_id, "api_name": api_name, "event_name": event_name, "version": str(version)}
    for name, value in plain.items():
        kind = type(value)
        if kind is str:
            fields[PARAMETER_PREFIX + name] = quote_ascii(value)
            continue
        if kind is bool or value is None:
            fields[PARAMETER_PREFIX + name] = LITERAL_JSON[value]
            continue
        try:
            fields[PARAMETER_PREFIX + name] = _dumps(value)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterValue(
                f"{api_name}.{event_name}: parameter {name!r} cannot be encoded as JSON: {exc}"
            ) from exc
    return fields


def entry_size(fields: Mapping[Any, Any]) -> int:
    """Bytes of an entry's field names and values (str counted as UTF-8 for ASCII text)."""
    return sum(map(len, fields)) + sum(map(len, fields.values()))


class RawEvent(NamedTuple):
    """A decoded entry before its parameters are cast: metadata plus JSON-decoded values."""

    id: str
    api_name: str
    event_name: str
    version: int
    parameters: dict[str, Any]
    trace_context: Optional[dict[str, str]] = None  # traceparent (and tracestate) when carried


def is_noop(fields: Mapping[bytes, bytes]) -> bool:
    """True for Lightbus's stream-creating entry (``XADD s * "" ""``)."""
    return len(fields) == 1 and fields.get(b"") == b""


#: The kinds of field ``_field_name`` tells apart.
_PARAMETER, _METADATA, _TRACE, _SKIPPED = range(4)
_scan_string = json.decoder.scanstring  # type: ignore[attr-defined]  # in CPython, not in typeshed
_JSON_LITERALS = {"true": True, "false": False, "null": None}


def _field_name(raw_key: bytes) -> tuple[int, str]:
    """(kind, name) of a field (asked once per field layout: see ``_shape``). Raises
    MalformedEntry."""
    try:
        key = raw_key.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEntry(f"field {raw_key!r} is not valid UTF-8") from None
    if key.startswith(PARAMETER_PREFIX):
        return _PARAMETER, key[1:]
    if key in METADATA_FIELDS:
        return _METADATA, key
    if key in _IGNORED_FIELDS:
        return _SKIPPED, key  # as Lightbus's ByFieldMessageDeserializer does
    if key in TRACE_FIELDS:
        return _TRACE, key
    raise MalformedEntry(f"unknown metadata field {key!r} (a Lightbus consumer would stop on it too)")


def decode_json(value: str) -> Any:
    """``json.loads(value)``, with cheaper paths for a whole string, a literal and a
    plain integer (what most parameters hold); the same result, the same errors."""
    first = value[:1]
    if first == '"':
        text, end = _scan_string(value, 1)
        if end == len(value):
            return text
    elif first.isdigit() and value.isdigit() and value.isascii() and (first != "0" or len(value) == 1):
        return int(value)
    else:
        literal = _JSON_LITERALS.get(value, _JSON_LITERALS)
        if literal is not _JSON_LITERALS:
            return literal
    return json.loads(value)


class _Shape(NamedTuple):
    """How to read the entries of one field layout (the field names, in order): where
    each metadata field is, and which fields are parameters or trace context."""

    metadata: tuple[int, int, int, int]  # positions of METADATA_FIELDS
    parameters: tuple[tuple[int, str], ...]  # (position, parameter name)
    trace: tuple[tuple[int, str], ...]  # (position, trace field)


#: Field layouts seen so far: a bus's events have few, so each is worked out once.
_SHAPES: dict[tuple[bytes, ...], _Shape] = {}
_SHAPES_MAX = 10_000


def _shape(keys: tuple[bytes, ...]) -> _Shape:
    """The shape of an entry with fields ``keys``. Raises MalformedEntry for an unknown
    field or a missing metadata field."""
    metadata: dict[str, int] = {}
    parameters: list[tuple[int, str]] = []
    trace: list[tuple[int, str]] = []
    for position, raw_key in enumerate(keys):
        kind, name = _field_name(raw_key)
        if kind == _PARAMETER:
            parameters.append((position, name))
        elif kind == _METADATA:
            metadata[name] = position
        elif kind == _TRACE:
            trace.append((position, name))
    missing = [f for f in METADATA_FIELDS if f not in metadata]
    if missing:
        raise MalformedEntry(f"missing metadata field(s): {', '.join(missing)}")
    shape = _Shape(
        (metadata["id"], metadata["api_name"], metadata["event_name"], metadata["version"]),
        tuple(parameters), tuple(trace),
    )
    if len(_SHAPES) < _SHAPES_MAX:
        _SHAPES[keys] = shape
    return shape


def _text_values(fields: Mapping[bytes, bytes]) -> list[str]:
    """The field values as text. Raises MalformedEntry naming a field that is not UTF-8."""
    try:
        return [value.decode("utf-8") for value in fields.values()]
    except UnicodeDecodeError:
        for raw_key, value in fields.items():
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedEntry(f"field {raw_key!r} is not valid UTF-8") from None
        raise


def decode_entry(fields: Optional[Mapping[bytes, bytes]]) -> RawEvent:
    """Decode an entry's fields. Raises MalformedEntry naming what is wrong, whatever
    goes wrong (a JSON value nested too deeply to decode names its RecursionError)."""
    if not fields:
        raise MalformedEntry("entry has no fields (trimmed or deleted while pending)")
    keys = tuple(fields)
    shape = _SHAPES.get(keys)
    if shape is None:
        shape = _shape(keys)
    values = _text_values(fields)
    at_id, at_api, at_event, at_version = shape.metadata
    event_id, api_name, event_name, version_text = values[at_id], values[at_api], values[at_event], values[at_version]
    if not (event_id and api_name and event_name and version_text):
        empty = [f for f, at in zip(METADATA_FIELDS, shape.metadata) if not values[at]]
        raise MalformedEntry(f"missing metadata field(s): {', '.join(empty)}")
    try:
        version = int(version_text)
    except ValueError:
        raise MalformedEntry(f"version {version_text!r} is not an integer") from None
    parameters: dict[str, Any] = {}
    for position, name in shape.parameters:
        try:
            parameters[name] = decode_json(values[position])
        except ValueError as exc:
            raise MalformedEntry(f"parameter {name!r} is not valid JSON: {exc}") from None
        except Exception as exc:  # RecursionError (deep nesting), MemoryError, ...
            raise MalformedEntry(f"parameter {name!r} cannot be decoded: {type(exc).__name__}: {exc}") from None
    trace = {name: values[position] for position, name in shape.trace} if shape.trace else None
    return RawEvent(event_id, api_name, event_name, version, parameters, trace)
