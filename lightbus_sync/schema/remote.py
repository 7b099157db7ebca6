"""API definitions rebuilt from a schema on the bus, for APIs this process does not define.

The types are what JSON Schema can say: ``string`` (``date-time`` -> datetime, ``date``
-> date, the decimal pattern -> Decimal), ``integer``, ``number``, ``boolean``, ``null``,
arrays as ``list``/``tuple``, objects as ``dict``; ``anyOf`` becomes a Union. Objects
arrive as dicts (the classes behind them live in the other service), unless the
handler annotates a richer type.
"""

from __future__ import annotations

import datetime
import decimal
import typing
from typing import Any, Mapping

from ..api import NO_DEFAULT, ApiDefinition, EventDefinition, Parameter
from ..parameter_types import NoneType
from .generate import DECIMAL_PATTERN


def python_type(schema: Mapping[str, Any]) -> Any:
    """The Python type best describing values valid for ``schema``."""
    if "anyOf" in schema:
        members = tuple(dict.fromkeys(python_type(branch) for branch in schema["anyOf"]))
        if len(members) == 1:
            return members[0]
        return typing.Union[members]
    kind = schema.get("type")
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return datetime.datetime
        if fmt == "date":
            return datetime.date
        if schema.get("pattern") == DECIMAL_PATTERN:
            return decimal.Decimal
        return str
    if kind == "integer":
        return int
    if kind == "number":
        return float
    if kind == "boolean":
        return bool
    if kind == "null":
        return NoneType
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, list):
            return tuple[tuple(python_type(i) for i in items)] if items else tuple  # type: ignore[misc]
        if isinstance(items, Mapping):
            return list[python_type(items)]  # type: ignore[misc]
        return list
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and not schema.get("properties"):
            return dict[str, python_type(extra)]  # type: ignore[misc]
        return dict
    return Any


def _default_of(schema: Mapping[str, Any]) -> Any:
    if "default" in schema:
        return schema["default"]
    for branch in schema.get("anyOf", ()):
        if "default" in branch:
            return branch["default"]
    return None


def api_definition_from_schema(api_name: str, document: Mapping[str, Any], version: int = 1) -> ApiDefinition:
    """An ApiDefinition for a remote API, from its schema document."""
    events: dict[str, EventDefinition] = {}
    for event_name, event_schema in (document.get("events") or {}).items():
        parameters_schema = event_schema.get("parameters") or {}
        required = set(parameters_schema.get("required") or ())
        parameters = []
        for name, schema in (parameters_schema.get("properties") or {}).items():
            default: Any = NO_DEFAULT if name in required else _default_of(schema)
            parameters.append(Parameter(name, python_type(schema), default))
        # Required parameters first in their declared order, as the producer defined them.
        order = list(parameters_schema.get("required") or ())
        parameters.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
        events[event_name] = EventDefinition.build(api_name, event_name, version, tuple(parameters))
    return ApiDefinition(api_name, version, events, None)
