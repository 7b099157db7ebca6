"""Parameter types end to end: fire through a real Redis, read the entry back with
XRANGE, decode it (wire.decode_entry) and cast it the way the runner does
(listeners.bind_handler(...)[1].structure): values come back equal and of the declared
type, all the way down."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import typing
import uuid
from typing import Any, NamedTuple, Optional, Union

import attrs
import pytest

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.listeners import bind_handler
from lightbus_sync.wire import decode_entry


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.Enum):
    LOW = 1
    HIGH = 3


class StrColor(str, enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    DEBUG = 10
    INFO = 20


@attrs.define
class Money:
    amount: decimal.Decimal
    currency: str = "EUR"


@dataclasses.dataclass
class Address:
    street: str
    city: str
    postcode: Optional[str] = None


@dataclasses.dataclass
class Customer:
    name: str
    address: Address  # nested dataclass
    balance: Money  # attrs class inside a dataclass
    tags: list[str] = dataclasses.field(default_factory=list)


class Point(NamedTuple):
    x: float
    y: float
    label: str = "origin"


@attrs.frozen
class Shipment:
    customers: list[Customer]
    route: dict[str, Point]
    sent_at: datetime.datetime
    priority: Priority
    parcels: tuple[int, ...]


UTC = datetime.timezone.utc
CUSTOMER = Customer("Zoë", Address("1 Main St", "Springfield"), Money(decimal.Decimal("12.50")), ["vip"])

#: (declared type, value fired, value expected back, JSON on the wire or None)
CASES: list[tuple[Any, Any, Any, Optional[str]]] = [
    (str, "zoë ☃", "zoë ☃", '"zo\\u00eb \\u2603"'),
    (int, -5, -5, "-5"),
    (float, 1.5, 1.5, "1.5"),
    (float, 2, 2.0, "2"),  # an int is a valid float; it comes back as the declared float
    (bool, True, True, "true"),
    (bool, False, False, "false"),
    (None, None, None, "null"),
    (type(None), None, None, "null"),
    (Optional[int], None, None, "null"),
    (Optional[int], 3, 3, "3"),
    (Union[int, str], "x", "x", '"x"'),
    (Union[int, str], 7, 7, "7"),
    (list[int], [3, 1, 2], [3, 1, 2], "[3, 1, 2]"),
    (typing.List[str], [], [], "[]"),
    (tuple[int, ...], (1, 2, 3), (1, 2, 3), "[1, 2, 3]"),
    (tuple[int, str], (1, "a"), (1, "a"), '[1, "a"]'),
    (set[str], {"only"}, {"only"}, '["only"]'),
    (set[int], {3, 1, 2}, {1, 2, 3}, None),  # set order on the wire is not defined
    (frozenset[int], frozenset({4}), frozenset({4}), "[4]"),
    (dict[str, int], {"z": 1, "a": 2}, {"z": 1, "a": 2}, '{"a": 2, "z": 1}'),
    (dict[str, list[float]], {"k": [1.0, 2.5]}, {"k": [1.0, 2.5]}, '{"k": [1.0, 2.5]}'),
    (datetime.datetime, datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
     datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), '"2024-01-02T03:04:05.123456+00:00"'),
    (datetime.datetime, datetime.datetime(2024, 1, 2, 3, 4), datetime.datetime(2024, 1, 2, 3, 4),
     '"2024-01-02T03:04:00"'),
    (datetime.date, datetime.date(1990, 12, 31), datetime.date(1990, 12, 31), '"1990-12-31"'),
    (uuid.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678"),
     uuid.UUID("12345678-1234-5678-1234-567812345678"), '"12345678-1234-5678-1234-567812345678"'),
    (decimal.Decimal, decimal.Decimal("1234.50"), decimal.Decimal("1234.50"), '"1234.50"'),
    (Color, Color.GREEN, Color.GREEN, '"green"'),
    (Priority, Priority.HIGH, Priority.HIGH, "3"),
    (StrColor, StrColor.RED, StrColor.RED, '"red"'),
    (Level, Level.INFO, Level.INFO, "20"),
    (bytes, b"\x00\xffbin", b"\x00\xffbin", '"AP9iaW4="'),
    (typing.Literal["a", "b"], "b", "b", '"b"'),
    (Money, Money(decimal.Decimal("1.5")), Money(decimal.Decimal("1.5")), '{"amount": "1.5", "currency": "EUR"}'),
    (Address, Address("1 Main St", "Springfield"), Address("1 Main St", "Springfield"),
     '{"city": "Springfield", "postcode": null, "street": "1 Main St"}'),
    (Point, Point(1.5, -2.0), Point(1.5, -2.0), '{"label": "origin", "x": 1.5, "y": -2.0}'),
    (Customer, CUSTOMER, CUSTOMER, None),
    (Optional[Address], Address("s", "c", "PC1"), Address("s", "c", "PC1"), None),
    (list[Address], [Address("a", "b"), Address("c", "d")], [Address("a", "b"), Address("c", "d")], None),
    (dict[str, Point], {"home": Point(0, 1)}, {"home": Point(0.0, 1.0)}, None),
    (dict[str, Level], {"root": Level.DEBUG}, {"root": Level.DEBUG}, '{"root": 10}'),
    (list[StrColor], [StrColor.GREEN], [StrColor.GREEN], '["green"]'),
    (Shipment, Shipment([CUSTOMER], {"a": Point(1, 2, "A")},
                        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), Priority.LOW, (1, 2)),
     Shipment([CUSTOMER], {"a": Point(1.0, 2.0, "A")},
              datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), Priority.LOW, (1, 2)), None),
    (Any, {"free": [1, "form", None]}, {"free": [1, "form", None]}, '{"free": [1, "form", null]}'),
    (list, [1, "a"], [1, "a"], '[1, "a"]'),
    (dict, {"b": 1, "a": True}, {"b": 1, "a": True}, '{"a": true, "b": 1}'),
]


class CoreTypesApi(Api):
    everything = Event(parameters=[Parameter(f"p{i}", tp) for i, (tp, _, _, _) in enumerate(CASES)])
    with_defaults = Event(parameters=[
        Parameter("required", str),
        Parameter("flag", bool, default=False),
        Parameter("when", Optional[datetime.datetime], default=None),
        Parameter("color", Color, default=Color.RED),
        Parameter("items", list[int], default=[1, 2]),
    ])

    class Meta:
        name = "core_types"


def assert_same(actual: Any, expected: Any, where: str = "value") -> None:
    """Equal, and of exactly the same type at every level (a subclass is not enough)."""
    assert type(actual) is type(expected), f"{where}: {type(actual).__name__} != {type(expected).__name__}"
    assert actual == expected, f"{where}: {actual!r} != {expected!r}"
    if isinstance(expected, dict):
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{index}]")
    elif isinstance(expected, (set, frozenset)):
        assert {type(a) for a in actual} == {type(e) for e in expected}, where
    elif attrs.has(type(expected)):
        for field in attrs.fields(type(expected)):
            assert_same(getattr(actual, field.name), getattr(expected, field.name), f"{where}.{field.name}")
    elif dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            assert_same(getattr(actual, field.name), getattr(expected, field.name), f"{where}.{field.name}")


def test_assert_same_catches_type_differences():
    with pytest.raises(AssertionError):
        assert_same(2, 2.0)
    with pytest.raises(AssertionError):
        assert_same(["red"], [StrColor.RED])
    with pytest.raises(AssertionError):
        assert_same(Address("a", "b"), {"street": "a", "city": "b", "postcode": None})


@pytest.fixture
def bus(redis_url):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="core-types")
    yield bus
    bus.close()


def _incoming(redis_client, definition, stream: str = "core_types.*:stream"):
    """The only entry of the stream, decoded and cast as the runner does."""
    entries = redis_client.xrange(stream)
    assert len(entries) == 1
    entry_id, fields = entries[0]
    raw = decode_entry(fields)

    def handler(**kwargs):  # accepts every parameter; casts come from the definition
        pass

    binding = bind_handler(handler, definition)[1]
    return entry_id.decode(), fields, raw, binding.structure(raw)


def test_every_type_round_trips_through_redis(bus, redis_client):
    kwargs = {f"p{i}": value for i, (_, value, _, _) in enumerate(CASES)}
    message = bus.core_types.everything.fire(**kwargs)
    entry_id, fields, raw, values = _incoming(redis_client, CoreTypesApi.definition.events["everything"])
    assert entry_id == message.stream_id and raw.id == message.id
    for i, (tp, _, expected, wire_json) in enumerate(CASES):
        name = f"p{i}"
        assert_same(values[name], expected, f"{name} ({tp!r})")
        if wire_json is not None:
            assert fields[f":{name}".encode()].decode() == wire_json, f"{name} ({tp!r})"
        else:  # still valid JSON, as the wire rules say
            json.loads(fields[f":{name}".encode()])
    assert list(values) == list(kwargs)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[repr(c[0]) for c in CASES])
def test_each_type_alone(bus, redis_client, index):
    """The same, one parameter per event: a failure names the type."""
    tp, value, expected, _ = CASES[index]
    api_name = f"core_types_single_{index}"
    api = type("SingleApi", (Api,), {
        "one": Event(parameters=[Parameter("value", tp)]),
        "Meta": type("Meta", (), {"name": api_name}),
    })
    bus.api(api_name).one.fire(value=value)
    _, _, _, values = _incoming(redis_client, api.definition.events["one"], f"{api_name}.*:stream")
    assert_same(values["value"], expected)


def test_defaults_are_filled_in_on_the_wire_and_in_the_message(bus, redis_client):
    message = bus.core_types.with_defaults.fire(required="x")
    assert dict(message.kwargs) == {
        "required": "x", "flag": False, "when": None, "color": Color.RED, "items": [1, 2]}
    _, fields, _, values = _incoming(redis_client, CoreTypesApi.definition.events["with_defaults"])
    assert {k.decode(): v.decode() for k, v in fields.items() if k.startswith(b":")} == {
        ":required": '"x"', ":flag": "false", ":when": "null", ":color": '"red"', ":items": "[1, 2]"}
    assert_same(values, {"required": "x", "flag": False, "when": None, "color": Color.RED, "items": [1, 2]})


def test_a_mutable_default_is_not_shared_between_fires(bus):
    first = bus.core_types.with_defaults.fire(required="a")
    first.kwargs["items"].append(99)
    second = bus.core_types.with_defaults.fire(required="b")
    assert second.kwargs["items"] == [1, 2]
    assert CoreTypesApi.definition.events["with_defaults"].parameters[-1].default == [1, 2]
