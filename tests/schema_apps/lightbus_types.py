"""The definitions behind tests/fixtures/lightbus_schemas (see its README), written
with lightbus_sync's classes: the same Python definitions Lightbus 1.1.2 was given."""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union
from uuid import UUID

import attr

from lightbus_sync import Api, Event, Parameter

NoneType = type(None)


class Color(Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Priority(Enum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class StrColor(str, Enum):
    RED = "red"
    GREEN = "green"


class Level(IntEnum):
    DEBUG = 10
    INFO = 20


class Role(Enum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclass
class Address:
    street: str
    city: str
    postcode: Optional[str] = None


@dataclass
class Customer:
    name: str
    address: Address
    vip: bool = False
    tags: List[str] = field(default_factory=list)


class Point(NamedTuple):
    x: float
    y: float
    label: str = "origin"


@attr.s(auto_attribs=True)
class Money:
    amount: Decimal
    currency: str = "EUR"


class AuthApi(Api):
    user_registered = Event(parameters=[
        Parameter("username", str), Parameter("email", str), Parameter("is_admin", bool, default=False),
    ])
    user_deleted = Event(parameters=("username", "email"))
    user_updated = Event(parameters=[
        Parameter("username", str),
        Parameter("user_id", UUID),
        Parameter("updated_at", datetime),
        Parameter("birthday", date),
        Parameter("balance", Decimal),
        Parameter("role", Role),
        Parameter("tags", List[str]),
        Parameter("scores", Dict[str, int]),
        Parameter("address", Address),
        Parameter("location", Point),
        Parameter("is_admin", bool, default=False),
        Parameter("note", Optional[str], default=None),
    ])

    class Meta:
        name = "my_company.auth"
        version = 3


class TypesApi(Api):
    primitives = Event(parameters=[
        Parameter("s", str), Parameter("i", int), Parameter("f", float), Parameter("b", bool),
        Parameter("n", None), Parameter("nt", NoneType), Parameter("raw", bytes), Parameter("anything", Any),
    ])
    specials = Event(parameters=[
        Parameter("when", datetime), Parameter("day", date), Parameter("uid", UUID),
        Parameter("amount", Decimal), Parameter("color", Color), Parameter("priority", Priority),
        Parameter("str_color", StrColor), Parameter("level", Level),
    ])
    unions = Event(parameters=[
        Parameter("opt_str", Optional[str]),
        Parameter("int_or_str", Union[int, str]),
        Parameter("opt_str_default_none", Optional[str], default=None),
        Parameter("str_default_none", str, default=None),  # implicitly Optional, as in Lightbus
        Parameter("int_or_str_default", Union[int, str], default=0),
    ])
    containers = Event(parameters=[
        Parameter("list_int", list[int]),
        Parameter("list_str", List[str]),
        Parameter("tuple_ellipsis", tuple[int, ...]),
        Parameter("tuple_fixed", Tuple[int, str]),
        Parameter("set_str", set[str]),
        Parameter("dict_str_int", dict[str, int]),
        Parameter("dict_str_float", Dict[str, float]),
        Parameter("bare_list", list),
        Parameter("bare_dict", dict),
        Parameter("list_of_dataclass", List[Address]),
    ])
    objects = Event(parameters=[
        Parameter("customer", Customer),
        Parameter("point", Point),
        Parameter("money", Money),
        Parameter("maybe_address", Optional[Address]),
    ])

    class Meta:
        name = "my_company.types"


class DefaultsApi(Api):
    untyped_defaults = Event(parameters=[
        "plain",
        Parameter("flag", default=False),
        Parameter("nothing", default=None),
        Parameter("count", default=0),
        Parameter("name", default="x"),
        Parameter("items", default=[1, 2]),
    ])
    typed_defaults = Event(parameters=[
        Parameter("flag", bool, default=False),
        Parameter("nothing", Optional[int], default=None),
        Parameter("count", int, default=0),
        Parameter("name", str, default="x"),
        Parameter("items", List[int], default=[1, 2]),
        Parameter("ratio", float, default=0.5),
    ])
    ping = Event()

    class Meta:
        name = "defaults_demo"
        version = 2
