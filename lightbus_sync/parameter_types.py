"""The parameter types the bus carries, and the strict checks made before firing.

Supported: ``Any`` (an untyped parameter), str, int, float, bool, None, bytes,
datetime, date, UUID, Decimal, Enum subclasses, ``list[X]``, ``tuple[X, ...]``,
``tuple[X, Y]``, ``set[X]``/``frozenset[X]``, ``dict[str, X]``, ``Optional``/``Union``,
and classes with fields: attrs classes, dataclasses and NamedTuples (nested freely).

Outgoing values are checked, never cast: ``is_admin='yes'`` for a ``bool`` parameter
is an error. The only widening allowed is the numeric tower's: an ``int`` is a valid
``float``. ``bool`` is not accepted where ``int`` is declared.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import typing
import uuid
from typing import Any, Callable, Optional

import attrs

from .errors import UnsupportedParameterType

NoneType = type(None)

#: A checker returns ``None`` for a good value, else a description of the problem.
Checker = Callable[[Any], Optional[str]]

_SCALARS: tuple[type, ...] = (
    str, int, float, bool, NoneType, bytes,
    datetime.datetime, datetime.date, uuid.UUID, decimal.Decimal,
)
_LIST_ORIGINS = (list, collections.abc.Sequence, collections.abc.MutableSequence)
_SET_ORIGINS = (set, frozenset, collections.abc.Set, collections.abc.MutableSet)
_DICT_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def is_namedtuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def is_record_class(tp: Any) -> bool:
    """True for classes whose instances travel as JSON objects (attrs, dataclass, NamedTuple)."""
    return isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or is_namedtuple(tp)
    )


def record_field_types(tp: type) -> dict[str, Any]:
    """Field name -> declared type, in definition order, for a record class."""
    hints = typing.get_type_hints(tp)
    if attrs.has(tp):
        return {f.name: hints.get(f.name, f.type if f.type is not None else Any)
                for f in attrs.fields(tp)}
    if dataclasses.is_dataclass(tp):
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(tp)}
    namedtuple: Any = tp
    return {name: hints.get(name, Any) for name in namedtuple._fields}


def describe(tp: Any) -> str:
    """A short human name for a type: ``int``, ``list[str]``, ``Optional[Color]``."""
    if tp is Any:
        return "any JSON-encodable value"
    if tp is NoneType or tp is None:
        return "None"
    origin = typing.get_origin(tp)
    if origin is typing.Union or _is_pep604_union(tp):
        args = typing.get_args(tp)
        if len(args) == 2 and NoneType in args:
            other = args[0] if args[1] is NoneType else args[1]
            return f"Optional[{describe(other)}]"
        return " | ".join(describe(a) for a in args)
    if origin is not None:
        args = typing.get_args(tp)
        name = getattr(origin, "__name__", str(origin))
        if not args:
            return name
        inner = ", ".join("..." if a is Ellipsis else describe(a) for a in args)
        return f"{name}[{inner}]"
    if isinstance(tp, type):
        return tp.__qualname__ if tp.__module__ not in ("builtins",) else tp.__name__
    return repr(tp)


def _is_pep604_union(tp: Any) -> bool:
    import types as _types

    return isinstance(tp, _types.UnionType)


def union_members(tp: Any) -> Optional[tuple[Any, ...]]:
    if typing.get_origin(tp) is typing.Union or _is_pep604_union(tp):
        return typing.get_args(tp)
    return None


def normalize(tp: Any) -> Any:
    """``None`` means NoneType; a missing annotation means ``Any``."""
    if tp is None:
        return NoneType
    return tp


def check_supported(tp: Any, where: str, _path: tuple[Any, ...] = ()) -> None:
    """Raise UnsupportedParameterType unless values of ``tp`` can travel on the bus.

    A record class that contains itself (``children: list["Node"]``) is refused: the
    Lightbus schema of a parameter has no way to refer back to an enclosing type.
    """
    tp = normalize(tp)
    if tp is Any or tp in _SCALARS or tp is object:
        return
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return
    if tp in (list, tuple, set, frozenset, dict):
        return
    members = union_members(tp)
    if members is not None:
        for member in members:
            check_supported(member, where, _path)
        return
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in _LIST_ORIGINS or origin in _SET_ORIGINS or origin is tuple:
        for arg in args:
            if arg is not Ellipsis:
                check_supported(arg, where, _path)
        return
    if origin in _DICT_ORIGINS:
        if args and normalize(args[0]) not in (str, Any):
            raise UnsupportedParameterType(
                f"{where}: dict keys must be str on the bus (JSON object keys), "
                f"not {describe(args[0])}"
            )
        if args:
            check_supported(args[1], where, _path)
        return
    if typing.get_origin(tp) is typing.Literal:
        return
    if is_record_class(tp):
        if tp in _path:
            chain = " -> ".join(t.__qualname__ for t in (*_path, tp))
            raise UnsupportedParameterType(
                f"{where}: {tp.__qualname__} contains itself ({chain}); recursive types "
                f"cannot be described in the event's schema"
            )
        try:
            field_types = record_field_types(tp)
        except Exception as exc:  # get_type_hints: a forward reference it cannot resolve
            raise UnsupportedParameterType(
                f"{where}: cannot read the field types of {tp.__qualname__}: "
                f"{type(exc).__name__}: {exc} (define the class at module level, so its "
                f"annotations can be resolved)"
            ) from None
        for name, field_type in field_types.items():
            check_supported(field_type, f"{where} (field {tp.__qualname__}.{name})", (*_path, tp))
        return
    raise UnsupportedParameterType(
        f"{where}: type {describe(tp)} cannot be carried on the bus. Use str, int, float, "
        f"bool, None, bytes, datetime, date, UUID, Decimal, an Enum, list/tuple/set/dict[str, X], "
        f"Optional/Union, or an attrs class, dataclass or NamedTuple of those"
    )


def _got(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"got {type(value).__name__} ({text})"


def _instance_checker(expected: type, name: str, exclude: tuple[type, ...] = ()) -> Checker:
    def check(value: Any) -> Optional[str]:
        if isinstance(value, expected) and not isinstance(value, exclude):
            return None
        return f"expected {name}, {_got(value)}"

    return check


def _accept_anything(value: Any) -> Optional[str]:
    return None


def make_checker(tp: Any) -> Checker:
    """Build a checker for values of ``tp`` (call once per parameter, not per value)."""
    tp = normalize(tp)
    if tp is Any or tp is object:
        return _accept_anything
    if tp is bool:
        return _instance_checker(bool, "bool")
    if tp is int:
        return _instance_checker(int, "int", exclude=(bool,))
    if tp is float:
        return _instance_checker((int, float), "float", exclude=(bool,))  # type: ignore[arg-type]
    if tp is datetime.date:
        return _instance_checker(datetime.date, "date", exclude=(datetime.datetime,))
    if tp is NoneType:
        return _instance_checker(NoneType, "None")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        choices = ", ".join(repr(m.value) for m in tp)
        return _instance_checker(tp, f"a member of {tp.__qualname__} ({choices})")
    if tp is list or tp is tuple or tp is set or tp is frozenset or tp is dict:
        return _instance_checker(tp, tp.__name__)
    if isinstance(tp, type) and tp in _SCALARS:
        return _instance_checker(tp, describe(tp))
    members = union_members(tp)
    if members is not None:
        return _union_checker(tp, members, [make_checker(m) for m in members])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        allowed = set(args)

        def check_literal(value: Any) -> Optional[str]:
            return None if value in allowed else f"expected one of {sorted(map(repr, allowed))}, {_got(value)}"

        return check_literal
    if origin in _LIST_ORIGINS:
        return _items_checker(list, "list", make_checker(args[0]) if args else _accept_anything)
    if origin in _SET_ORIGINS:
        return _items_checker((set, frozenset), "set", make_checker(args[0]) if args else _accept_anything)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _items_checker(tuple, "tuple", make_checker(args[0]))
        return _fixed_tuple_checker([make_checker(a) for a in args])
    if origin in _DICT_ORIGINS:
        value_checker = make_checker(args[1]) if args else _accept_anything
        return _dict_checker(value_checker)
    if is_record_class(tp):
        return _record_checker(tp)
    raise UnsupportedParameterType(f"type {describe(tp)} cannot be carried on the bus")


def _runtime_class(tp: Any) -> Optional[type]:
    """The class values of ``tp`` are instances of (``list`` for ``list[int]``), if any."""
    tp = normalize(tp)
    origin = typing.get_origin(tp)
    if origin in _LIST_ORIGINS:
        return list
    if origin in _SET_ORIGINS:
        return (set, frozenset)  # type: ignore[return-value]
    if origin in _DICT_ORIGINS:
        return dict
    if origin is tuple:
        return tuple
    return tp if isinstance(tp, type) else None


def _union_checker(tp: Any, members: tuple[Any, ...], checkers: list[Checker]) -> Checker:
    name = describe(tp)
    classes = [_runtime_class(m) for m in members]

    def check(value: Any) -> Optional[str]:
        problems = []
        for checker in checkers:
            problem = checker(value)
            if problem is None:
                return None
            problems.append(problem)
        # A value of the right class with a bad part inside: say what is wrong inside.
        for cls, problem in zip(classes, problems):
            if cls is not None and cls is not NoneType and isinstance(value, cls):
                return problem
        return f"expected {name}, {_got(value)}"

    return check


def _items_checker(container: Any, name: str, item_checker: Checker) -> Checker:
    def check(value: Any) -> Optional[str]:
        if not isinstance(value, container):
            return f"expected {name}, {_got(value)}"
        if item_checker is _accept_anything:
            return None
        for index, item in enumerate(value):
            problem = item_checker(item)
            if problem is not None:
                where = f"[{index}]" if name != "set" else f"item {item!r}"
                return f"{where}: {problem}"
        return None

    return check


def _fixed_tuple_checker(checkers: list[Checker]) -> Checker:
    def check(value: Any) -> Optional[str]:
        if not isinstance(value, tuple) or len(value) != len(checkers):
            return f"expected a tuple of {len(checkers)} items, {_got(value)}"
        for index, (item, checker) in enumerate(zip(value, checkers)):
            problem = checker(item)
            if problem is not None:
                return f"[{index}]: {problem}"
        return None

    return check


def _dict_checker(value_checker: Checker) -> Checker:
    def check(value: Any) -> Optional[str]:
        if not isinstance(value, dict):
            return f"expected dict, {_got(value)}"
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r}: expected str keys, {_got(key)}"
            problem = value_checker(item)
            if problem is not None:
                return f"[{key!r}]: {problem}"
        return None

    return check


def _record_checker(tp: type) -> Checker:
    field_checkers: Optional[dict[str, Checker]] = None

    def check(value: Any) -> Optional[str]:
        nonlocal field_checkers
        if not isinstance(value, tp):
            return f"expected {tp.__qualname__}, {_got(value)}"
        if field_checkers is None:  # built lazily: record classes may refer to themselves
            field_checkers = {n: make_checker(t) for n, t in record_field_types(tp).items()}
        for name, checker in field_checkers.items():
            problem = checker(getattr(value, name))
            if problem is not None:
                return f".{name}: {problem}"
        return None

    return check
