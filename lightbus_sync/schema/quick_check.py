"""A cheap first check for the commonest parameter schemas: an object of plain
strings, integers, numbers and booleans (what the generator writes for ``str``,
``int``, ``float`` and ``bool`` parameters, optionally with a default).

``quick_check(schema)`` compiles such a schema into a function that returns True only
for data the schema certainly accepts; False means "not sure", and the full
validator decides. For any other schema it returns None (no quick check).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

#: JSON schema type -> the Python types of JSON-decoded values it certainly accepts.
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
#: Keys of a schema that constrain nothing (annotations).
_ANNOTATIONS = frozenset({"title", "description", "default", "$schema", "$id", "examples"})


def quick_check(schema: Any) -> Optional[Callable[[Any], bool]]:
    """The quick check of ``schema`` (see the module docstring), or None."""
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        return None
    if set(schema) - _ANNOTATIONS - {"type", "properties", "required", "additionalProperties"}:
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(properties, Mapping) or not isinstance(required, list):
        return None
    if schema.get("additionalProperties", True) not in (True, False):  # a schema for the others
        return None
    types: dict[str, tuple[type, ...]] = {}
    for name, prop in properties.items():
        if not isinstance(prop, Mapping) or set(prop) - _ANNOTATIONS - {"type"}:
            return None
        kind = prop.get("type")
        if not isinstance(kind, str) or kind not in _TYPES:
            return None
        types[name] = _TYPES[kind]
    if not all(isinstance(name, str) for name in required):
        return None
    needed = tuple(required)

    def check(data: Any) -> bool:
        if type(data) is not dict:
            return False
        for name in needed:
            if name not in data:
                return False
        for name, value in data.items():
            accepted = types.get(name)  # an unknown name: let the full validator decide
            if accepted is None or type(value) not in accepted:
                return False
        return True

    return check
