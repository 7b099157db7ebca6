"""JSON Schema (draft-07) from parameter types, in Lightbus 1.x's exact shape.

The document for an API is ``{"events": {name: {"parameters": {...}}}, "rpcs": {}}``,
encoded with sorted keys and Python's default separators (``encode_schema``), as
Lightbus stores it. Lightbus's mapping is followed, quirks included, with two
deliberate differences (both make valid events pass that Lightbus would refuse):

- ``tuple[X, ...]`` becomes ``{"type": "array", "items": X}`` (Lightbus: a 2-item tuple);
- attrs classes keep their defaults (Lightbus drops them and marks every field required).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import typing
import uuid
from typing import Any

import attrs

from ..api import ApiDefinition, EventDefinition, Parameter
from ..converter import wire_converter
from ..parameter_types import NoneType, is_namedtuple, normalize, record_field_types, union_members

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"

_encoder = json.JSONEncoder(sort_keys=True)


def encode_schema(document: Any) -> str:
    """Sorted keys, ``", "``/``": "`` separators, ASCII-escaped: Lightbus's encoding."""
    return _encoder.encode(document)


def _json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "array"
    return "object"


def type_schema(tp: Any) -> dict[str, Any]:
    """The schema of values of ``tp`` (no defaults)."""
    tp = normalize(tp)
    if tp is Any or tp is object:
        return {}
    members = union_members(tp)
    if members is not None:
        return {"anyOf": [type_schema(m) for m in members]}
    if tp is NoneType:
        return {"type": "null"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if issubclass(tp, str):
            return {"type": "string"}
        if issubclass(tp, int):
            return {"type": "integer"}
        values = [wire_converter.unstructure(member) for member in tp]
        return {"enum": values, "type": _json_type_of(values[0]) if values else "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp in (str, uuid.UUID, bytes):
        return {"type": "string"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is decimal.Decimal:
        return {"pattern": DECIMAL_PATTERN, "type": "string"}
    if tp is datetime.datetime:
        return {"format": "date-time", "type": "string"}
    if tp is datetime.date:
        return {"format": "date", "type": "string"}
    if tp in (list, set, frozenset, tuple):
        return {"type": "array"}
    if tp is dict:
        return {"type": "object"}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        values = list(args)
        return {"enum": values, "type": _json_type_of(values[0])}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"items": type_schema(args[0]), "type": "array"}
        return {"items": [type_schema(a) for a in args], "maxItems": len(args), "minItems": len(args), "type": "array"}
    if origin is not None and isinstance(origin, type) and issubclass(origin, dict) or origin in (
        typing.Mapping, typing.MutableMapping,
    ) or _is_abc(origin, "Mapping"):
        if args and normalize(args[0]) is str:
            return {"additionalProperties": type_schema(args[1]), "type": "object"}
        return {"type": "object"}
    if origin is not None:  # list[X], set[X], Sequence[X]...
        if args:
            return {"items": type_schema(args[0]), "type": "array"}
        return {"type": "array"}
    if isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp) or is_namedtuple(tp)):
        return _record_schema(tp)
    return {}


def _is_abc(origin: Any, name: str) -> bool:
    import collections.abc

    abc = getattr(collections.abc, name)
    return isinstance(origin, type) and issubclass(origin, abc)


_NO_DEFAULT = object()


def _record_defaults(tp: type) -> dict[str, Any]:
    """Field defaults of a record class; a factory default counts as none (Lightbus)."""
    if attrs.has(tp):
        return {
            f.name: f.default for f in attrs.fields(tp)
            if f.default is not attrs.NOTHING and not isinstance(f.default, attrs.Factory)  # type: ignore[arg-type]
        }
    if dataclasses.is_dataclass(tp):
        return {f.name: f.default for f in dataclasses.fields(tp) if f.default is not dataclasses.MISSING}
    return dict(getattr(tp, "_field_defaults", {}))


def _record_schema(tp: type) -> dict[str, Any]:
    defaults = _record_defaults(tp)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field_type in record_field_types(tp).items():
        schema = type_schema(field_type)
        if name in defaults:
            schema["default"] = wire_converter.unstructure(defaults[name])
        else:
            required.append(name)
        properties[name] = schema
    document: dict[str, Any] = {"additionalProperties": False, "properties": properties}
    if required:
        document["required"] = required
    document["title"] = tp.__name__
    document["type"] = "object"
    return document


def parameter_schema(parameter: Parameter) -> dict[str, Any]:
    """One top-level parameter: Lightbus copies a default into every ``anyOf`` branch and
    adds a ``null`` branch for a ``None`` default; an untyped parameter with a default
    takes its type from the default's type."""
    if parameter.is_required:
        return type_schema(parameter.type)
    default = wire_converter.unstructure(parameter.default)
    if parameter.type is Any:
        if default is None:
            return {"default": None}
        return {"default": default, "type": _json_type_of(default)}
    schema = type_schema(parameter.type)
    if default is None and "anyOf" not in schema and schema.get("type") != "null":
        schema = {"anyOf": [schema, {"type": "null"}]}
    if "anyOf" in schema:
        return {"anyOf": [dict(branch, default=default) for branch in schema["anyOf"]]}
    schema["default"] = default
    return schema


def event_parameters_schema(event: EventDefinition) -> dict[str, Any]:
    properties = {p.name: parameter_schema(p) for p in event.parameters}
    required = [p.name for p in event.parameters if p.is_required]
    document: dict[str, Any] = {
        "$schema": DRAFT_07,
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        document["required"] = required
    document["title"] = f"Event {event.api_name}.{event.name} parameters"
    document["type"] = "object"
    return document


def api_schema(api: ApiDefinition) -> dict[str, Any]:
    """The document stored as ``schema:{api.name}``."""
    return {
        "events": {name: {"parameters": event_parameters_schema(event)} for name, event in api.events.items()},
        "rpcs": {},
    }
