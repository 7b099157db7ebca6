"""The one cattrs converter that holds the wire rules, in both directions.

Unstructure (outgoing, values -> JSON-able data): datetime/date -> ISO 8601 string,
UUID and Decimal -> str, bytes -> base64 str, Enum -> its value, tuple/set -> list,
attrs/dataclass/NamedTuple -> dict. A ``datetime.time`` or an arbitrary object is refused.

Structure (incoming, JSON data -> declared types): best-effort casting, as Lightbus
does: ``"5"`` becomes ``5`` for an ``int``, an ISO string a ``datetime``, a dict an attrs
class. Casts that would lose information (``5.5`` to ``int``, ``"yes"`` to ``bool``)
are refused with a ``ValueError``/``TypeError``.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import uuid
from collections.abc import Set as AbstractSet
from typing import Any, Callable, cast

import cattrs
from cattrs.cols import (
    is_namedtuple,
    namedtuple_dict_structure_factory,
    namedtuple_dict_unstructure_factory,
)

from .parameter_types import NoneType, union_members


def _refuse_time(value: datetime.time) -> Any:
    raise TypeError("datetime.time values cannot be carried on the bus (no date, no zone)")


def _enum_member(value: Any, cl: Any) -> Any:
    """``cl(value)`` for an Enum mixing in str/int/float (``class C(str, Enum)``,
    ``IntEnum``): such classes dispatch to the str/int/float hooks, not Enum's."""
    if isinstance(value, cl):
        return value
    return cl(value)


def _is_enum(cl: Any) -> bool:
    return isinstance(cl, type) and issubclass(cl, enum.Enum)


def _structure_str(value: Any, cl: type) -> str:
    if _is_enum(cl):
        return cast(str, _enum_member(value, cl))  # a member of a str Enum
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")


def _structure_int(value: Any, cl: type) -> int:
    if _is_enum(cl):
        return cast(int, _enum_member(value, cl))  # a member of an int Enum
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got bool {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")


def _structure_float(value: Any, cl: type) -> float:
    if _is_enum(cl):
        return cast(float, _enum_member(value, cl))  # a member of a float Enum
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got bool {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise TypeError(f"expected a boolean, got {type(value).__name__} {value!r}")


def _structure_none(value: Any, _: type) -> None:
    if value is not None:
        raise TypeError(f"expected null, got {type(value).__name__} {value!r}")
    return None


def _structure_datetime(value: Any, _: type) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 date-time string, got {type(value).__name__} {value!r}")
    return datetime.datetime.fromisoformat(value)


def _structure_date(value: Any, _: type) -> datetime.date:
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 date string, got {type(value).__name__} {value!r}")
    return datetime.date.fromisoformat(value)


def _structure_uuid(value: Any, _: type) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__} {value!r}")
    return uuid.UUID(value)


def _structure_decimal(value: Any, _: type) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, decimal.Decimal)):
        raise TypeError(f"expected a decimal string, got {type(value).__name__} {value!r}")
    try:
        return decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None


def _structure_bytes(value: Any, _: type) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a base64 string, got {type(value).__name__} {value!r}")
    return base64.b64decode(value, validate=True)


def _structure_any(value: Any, _: type) -> Any:
    return value


def _is_any(tp: Any) -> bool:
    return tp is Any


def _make_union_structure(converter: cattrs.Converter) -> Callable[[Any], Callable[[Any, Any], Any]]:
    def factory(union: Any) -> Callable[[Any, Any], Any]:
        members = union_members(union) or ()

        def structure(value: Any, _: Any) -> Any:
            # An exact match first (so 5 stays an int in int | str), then casts in order.
            for member in members:
                if member is NoneType and value is None:
                    return None
                if isinstance(member, type) and type(value) is member:
                    return value
            errors = []
            for member in members:
                try:
                    return converter.structure(value, member)
                except (TypeError, ValueError, cattrs.BaseValidationError) as exc:
                    errors.append(exc)
            raise TypeError(f"{value!r} matches none of {', '.join(map(_type_name, members))}")

        return structure

    return factory


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", repr(tp))


def _is_union(tp: Any) -> bool:
    return union_members(tp) is not None


def build_converter() -> cattrs.Converter:
    """Build the bus's converter. Build once; it is thread-safe once built."""
    converter = cattrs.Converter(
        unstruct_collection_overrides={AbstractSet: list, tuple: list},
        detailed_validation=True,
        forbid_extra_keys=False,
    )
    converter.register_unstructure_hook(datetime.datetime, datetime.datetime.isoformat)
    converter.register_unstructure_hook(datetime.date, datetime.date.isoformat)
    converter.register_unstructure_hook(datetime.time, _refuse_time)
    converter.register_unstructure_hook(uuid.UUID, str)
    converter.register_unstructure_hook(decimal.Decimal, str)
    converter.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
    converter.register_unstructure_hook(enum.Enum, lambda e: e.value)
    converter.register_unstructure_hook_factory(
        is_namedtuple, lambda tp: namedtuple_dict_unstructure_factory(tp, converter)
    )

    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(NoneType, _structure_none)
    converter.register_structure_hook(datetime.datetime, _structure_datetime)
    converter.register_structure_hook(datetime.date, _structure_date)
    converter.register_structure_hook(uuid.UUID, _structure_uuid)
    converter.register_structure_hook(decimal.Decimal, _structure_decimal)
    converter.register_structure_hook(bytes, _structure_bytes)
    # A predicate, not register_structure_hook(Any, ...): Python 3.10's typing.Any is
    # not a class, and cattrs' singledispatch refuses it there.
    converter.register_structure_hook_func(_is_any, _structure_any)
    converter.register_structure_hook_factory(
        is_namedtuple, lambda tp: namedtuple_dict_structure_factory(tp, converter)
    )
    converter.register_structure_hook_factory(_is_union, _make_union_structure(converter))
    return converter


#: The converter every part of the bus uses.
wire_converter: cattrs.Converter = build_converter()
