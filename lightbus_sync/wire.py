"""The Lightbus 1.x wire format on Redis Streams: stream keys, entry fields, decoding.

An entry is exactly four metadata fields (``id``, ``api_name``, ``event_name``,
``version``; raw UTF-8, never JSON) followed by one ``:<parameter>`` field per
parameter holding JSON (sorted keys, Python's default separators, ASCII-escaped).
A "noop" entry (one empty field with an empty value) only creates a stream.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional

import attrs

from .converter import wire_converter
from .errors import InvalidParameterValue, MalformedEntry
from .keys import STREAM_PER_API, STREAM_PER_EVENT, stream_key  # noqa: F401 (their old home: kept importable)

METADATA_FIELDS = ("id", "api_name", "event_name", "version")
_METADATA_BYTES = frozenset(f.encode() for f in METADATA_FIELDS)
PARAMETER_PREFIX = ":"
#: Fields Lightbus's reader skips: an empty key, and ``native_id`` (it takes the entry id).
_IGNORED_FIELDS = frozenset({"", "native_id"})
#: W3C trace context fields an entry may carry (written only by APIs that opt in to
#: propagation: a Lightbus 1.1.2 consumer stops on them, see lightbus_sync.tracing).
TRACE_FIELDS = frozenset({"traceparent", "tracestate"})


_dumps = json.JSONEncoder(sort_keys=True, allow_nan=False).encode
_FAST_TYPES = (str, int, float, bool, type(None))
#: The JSON of the commonest values, produced exactly as ``_dumps`` would, but cheaper.
_quote_ascii = json.encoder.encode_basestring_ascii
_LITERALS = {True: "true", False: "false", None: "null"}


def new_event_id() -> str:
    """A random (version 4) UUID string: what ``str(uuid.uuid4())`` gives, cheaper."""
    digits = os.urandom(16).hex()
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:32]}"


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
            fields[PARAMETER_PREFIX + name] = _quote_ascii(value)
            continue
        if kind is bool or value is None:
            fields[PARAMETER_PREFIX + name] = _LITERALS[value]
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


@attrs.frozen
class RawEvent:
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


#: Field name (bytes) -> (kind, name) for the names seen so far: the few names of a
#: bus's events, decoded once instead of once per entry.
_PARAMETER, _METADATA, _TRACE, _SKIPPED = range(4)
_FIELD_NAMES: dict[bytes, tuple[int, str]] = {}
_FIELD_NAMES_MAX = 10_000
_scan_string = json.decoder.scanstring  # type: ignore[attr-defined]  # in CPython, not in typeshed
_JSON_LITERALS = {"true": True, "false": False, "null": None}


def _field_name(raw_key: bytes) -> tuple[int, str]:
    """(kind, name) of a field. Raises MalformedEntry."""
    try:
        return _FIELD_NAMES[raw_key]
    except KeyError:
        pass
    try:
        key = raw_key.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEntry(f"field {raw_key!r} is not valid UTF-8") from None
    if key.startswith(PARAMETER_PREFIX):
        known = (_PARAMETER, key[1:])
    elif key in METADATA_FIELDS:
        known = (_METADATA, key)
    elif key in _IGNORED_FIELDS:
        known = (_SKIPPED, key)  # as Lightbus's ByFieldMessageDeserializer does
    elif key in TRACE_FIELDS:
        known = (_TRACE, key)
    else:
        raise MalformedEntry(f"unknown metadata field {key!r} (a Lightbus consumer would stop on it too)")
    if len(_FIELD_NAMES) < _FIELD_NAMES_MAX:
        _FIELD_NAMES[raw_key] = known
    return known


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


def decode_entry(fields: Optional[Mapping[bytes, bytes]]) -> RawEvent:
    """Decode an entry's fields. Raises MalformedEntry naming what is wrong, whatever
    goes wrong (a JSON value nested too deeply to decode names its RecursionError)."""
    if not fields:
        raise MalformedEntry("entry has no fields (trimmed or deleted while pending)")
    metadata: dict[str, str] = {}
    parameters: dict[str, Any] = {}
    trace: Optional[dict[str, str]] = None
    for raw_key, raw_value in fields.items():
        kind, name = _field_name(raw_key)
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEntry(f"field {raw_key!r} is not valid UTF-8") from None
        if kind == _PARAMETER:
            try:
                parameters[name] = decode_json(value)
            except ValueError as exc:
                raise MalformedEntry(f"parameter {name!r} is not valid JSON: {exc}") from None
            except Exception as exc:  # RecursionError (deep nesting), MemoryError, ...
                raise MalformedEntry(f"parameter {name!r} cannot be decoded: {type(exc).__name__}: {exc}") from None
        elif kind == _METADATA:
            metadata[name] = value
        elif kind == _TRACE:
            if trace is None:
                trace = {}
            trace[name] = value
    missing = [f for f in METADATA_FIELDS if not metadata.get(f)]
    if missing:
        raise MalformedEntry(f"missing metadata field(s): {', '.join(missing)}")
    try:
        version = int(metadata["version"])
    except ValueError:
        raise MalformedEntry(f"version {metadata['version']!r} is not an integer") from None
    return RawEvent(metadata["id"], metadata["api_name"], metadata["event_name"], version, parameters, trace)
