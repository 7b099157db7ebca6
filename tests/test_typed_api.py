"""The typed form of an event (``@Event`` on a function) and ``bus.api(ApiClass)``: the
same definitions as the Lightbus form, and events reached through the class."""

from __future__ import annotations

import datetime
from typing import Optional

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, EventClient, InvalidApiDefinition, Parameter
from lightbus_sync.testing import record_events


class TypedShopApi(Api):
    @Event
    def order_placed(*, order_id: int, total: float, note: Optional[str] = None,
                     placed_at: datetime.datetime) -> None:
        "An order was placed."

    @Event
    def pinged() -> None:
        "No parameters."

    class Meta:
        name = "typed.shop"


class PlainShopApi(Api):
    order_placed = Event(parameters=(
        Parameter("order_id", int),
        Parameter("total", float),
        Parameter("note", Optional[str], default=None),
        Parameter("placed_at", datetime.datetime),
    ))
    pinged = Event()

    class Meta:
        name = "typed.plain_shop"


@pytest.fixture
def bus():
    bus = lightbus_sync.create(redis_url="redis://127.0.0.1:1/0", service_name="typed")
    yield bus
    bus.close()


def test_the_typed_form_defines_what_the_lightbus_form_does():
    typed, plain = TypedShopApi.definition, PlainShopApi.definition
    for name in ("order_placed", "pinged"):
        assert typed.events[name].parameters == plain.events[name].parameters
        assert typed.events[name].version == plain.events[name].version
    assert [p.is_required for p in typed.events["order_placed"].parameters] == [True, True, False, True]
    assert TypedShopApi.order_placed.__doc__ == "An order was placed."


def test_on_the_class_an_event_is_the_event_and_on_a_bus_its_client(bus):
    assert isinstance(TypedShopApi.order_placed, Event)
    shop = bus.api(TypedShopApi)
    assert isinstance(shop, TypedShopApi)
    client = shop.order_placed
    assert isinstance(client, EventClient) and client.canonical_name == "typed.shop.order_placed"
    assert bus.api(TypedShopApi).order_placed is client  # the bus's cached client


def test_a_bound_api_fires_with_the_same_checks(bus):
    with record_events(bus) as recorder:
        message = bus.api(TypedShopApi).order_placed.fire(
            order_id=3, total=9.5, placed_at=datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc))
        with pytest.raises(lightbus_sync.InvalidParameterValue, match="parameter 'order_id' expects int"):
            bus.api(TypedShopApi).order_placed.fire(order_id="3", total=9.5, placed_at=datetime.datetime.now())
    assert message.kwargs["note"] is None
    recorder.assert_fired_once("typed.shop.order_placed", order_id=3, total=9.5)


def test_an_api_instance_not_bound_to_a_bus_says_how_to_bind_it():
    with pytest.raises(InvalidApiDefinition, match=r"not bound to a bus: use bus.api\(TypedShopApi\)"):
        TypedShopApi().order_placed  # noqa: B018


def test_bus_api_refuses_a_class_that_is_no_api(bus):
    with pytest.raises(InvalidApiDefinition, match="is not an Api subclass"):
        bus.api(int)  # type: ignore[call-overload]


def test_a_positional_parameter_in_the_typed_form_is_refused_naming_it():
    with pytest.raises(InvalidApiDefinition, match=r"event typed_bad\.made: parameter 'username' must be keyword-only"):
        class BadApi(Api):
            @Event
            def made(username: str) -> None: ...  # type: ignore[misc]

            class Meta:
                name = "typed_bad"


def test_an_annotation_that_names_nothing_is_refused():
    with pytest.raises(InvalidApiDefinition, match=r"event typed_bad2\.made: cannot resolve the parameters' annotations"):
        class BadApi(Api):
            @Event
            def made(*, username: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

            class Meta:
                name = "typed_bad2"


def test_the_typed_form_checks_types_as_parameter_does():
    with pytest.raises(lightbus_sync.UnsupportedParameterType):
        class BadApi(Api):
            @Event
            def made(*, when: datetime.time) -> None: ...

            class Meta:
                name = "typed_bad3"
