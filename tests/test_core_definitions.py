"""Definitions: Api classes, Event(parameters=...), Parameter, the registration rule, and
the clear errors for every kind of bad definition."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import typing
from typing import Any, Optional

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.api import NO_DEFAULT, catalogue
from lightbus_sync.bus import ApiNamespace, EventClient
from lightbus_sync.errors import (
    InvalidApiDefinition,
    InvalidName,
    LightbusError,
    UnsupportedParameterType,
)


class CoreDefsAuthApi(Api):
    user_created = Event(parameters=("username", "email"))
    user_deleted = Event(parameters=("username"))  # a bare string: ONE parameter
    permission_changed = Event(parameters=(
        Parameter("username", str),
        Parameter("is_admin", bool, default=False),
    ))
    mixed = Event(parameters=["plain", Parameter("count", int, default=0)])
    nothing = Event()

    class Meta:
        name = "core_defs.my_company.auth"


class CoreDefsVersionedApi(Api):
    ping = Event()

    class Meta:
        name = "core_defs_versioned"
        version = 7


@pytest.fixture
def bus(redis_url):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="core-defs")
    yield bus
    bus.close()


def _define(name: Optional[str] = "core_defs_tmp", meta: bool = True, version: Any = None, **attributes):
    """Define an Api subclass at run time (as a class statement would)."""
    namespace: dict[str, Any] = dict(attributes)
    if meta:
        meta_attributes: dict[str, Any] = {}
        if name is not None:
            meta_attributes["name"] = name
        if version is not None:
            meta_attributes["version"] = version
        namespace["Meta"] = type("Meta", (), meta_attributes)
    return type("TmpApi", (Api,), namespace)


# --- good definitions ---------------------------------------------------------------


def test_dotted_api_name_is_reachable_attribute_by_attribute(bus):
    namespace = bus.core_defs.my_company
    assert isinstance(namespace, ApiNamespace)
    event = bus.core_defs.my_company.auth.user_created
    assert isinstance(event, EventClient)
    assert event.canonical_name == "core_defs.my_company.auth.user_created"
    assert bus.api("core_defs.my_company.auth").user_created.definition is event.definition
    assert event.stream == "core_defs.my_company.auth.*:stream"


def test_meta_version_defaults_to_1_and_is_carried_by_every_event():
    assert CoreDefsAuthApi.definition.version == 1
    assert all(e.version == 1 for e in CoreDefsAuthApi.definition.events.values())
    assert CoreDefsVersionedApi.definition.version == 7
    assert CoreDefsVersionedApi.definition.events["ping"].version == 7


def test_a_bare_string_is_one_parameter_never_its_letters(bus):
    definition = CoreDefsAuthApi.definition.events["user_deleted"]
    assert definition.parameter_names == ("username",)
    message = bus.core_defs.my_company.auth.user_deleted.fire(username="adam")
    assert dict(message.kwargs) == {"username": "adam"}


def test_parameters_by_name_or_by_parameter_object():
    events = CoreDefsAuthApi.definition.events
    created = events["user_created"].parameters
    assert [(p.name, p.type, p.default) for p in created] == [
        ("username", Any, NO_DEFAULT), ("email", Any, NO_DEFAULT)]
    assert all(p.is_required for p in created)
    changed = events["permission_changed"].parameters
    assert [(p.name, p.type, p.is_required) for p in changed] == [
        ("username", str, True), ("is_admin", bool, False)]
    assert changed[1].default is False
    assert events["mixed"].parameter_names == ("plain", "count")
    assert events["nothing"].parameters == ()


def test_defining_the_class_is_enough_even_after_the_bus_exists(bus):
    class LateApi(Api):  # defined after create(): still found
        happened = Event(parameters=("what",))

        class Meta:
            name = "core_defs_late"

    assert bus.core_defs_late.happened.definition.api_name == "core_defs_late"
    assert catalogue.get("core_defs_late") is LateApi.definition


def test_register_is_explicit_and_wins_over_the_catalogue_on_that_bus(bus, redis_url):
    class ExplicitV1(Api):
        happened = Event(parameters=("what",))

        class Meta:
            name = "core_defs_explicit"

    class ExplicitV2(Api):  # the catalogue now holds this one (the latest definition)
        happened = Event(parameters=("what", "when"))

        class Meta:
            name = "core_defs_explicit"

    assert bus.register(ExplicitV1) is ExplicitV1  # usable as a decorator
    assert bus.core_defs_explicit.happened.definition.parameter_names == ("what",)
    other = lightbus_sync.create(redis_url=redis_url, service_name="core-defs-other")
    try:
        assert other.core_defs_explicit.happened.definition.parameter_names == ("what", "when")
    finally:
        other.close()


def test_register_refuses_what_is_not_an_api_class(bus):
    with pytest.raises(InvalidApiDefinition, match="not an Api subclass"):
        bus.register(object)


def test_parameter_str_with_default_none_means_optional(bus):
    api = _define("core_defs_optional", note=Event(parameters=[Parameter("note", str, default=None)]))
    assert api.definition.events["note"].parameters[0].type == Optional[str]
    assert dict(bus.core_defs_optional.note.fire().kwargs) == {"note": None}
    assert dict(bus.core_defs_optional.note.fire(note="hi").kwargs) == {"note": "hi"}


# --- bad definitions: each a clear error ---------------------------------------------


def _raises(error: type, *needles: str):
    def check(excinfo: pytest.ExceptionInfo) -> None:
        assert isinstance(excinfo.value, LightbusError)
        assert isinstance(excinfo.value, error), excinfo.value
        for needle in needles:
            assert needle in str(excinfo.value), (needle, str(excinfo.value))

    return check


def test_no_meta_or_no_name():
    with pytest.raises(InvalidApiDefinition, match=r"needs a Meta class with a name") as excinfo:
        _define(meta=False, happened=Event())
    assert "TmpApi" in str(excinfo.value)
    with pytest.raises(InvalidApiDefinition, match=r"needs a Meta class with a name"):
        _define(name=None, happened=Event())
    with pytest.raises(InvalidApiDefinition, match=r"needs a Meta class with a name"):
        _define(name="", happened=Event())


@pytest.mark.parametrize("name", [
    "my company", "1auth", "auth.", ".auth", "a..b", "auth-service", "auth.2fa", "é", 5,
])
def test_invalid_api_names(name):
    with pytest.raises(InvalidName, match="Invalid API name") as excinfo:
        _define(name=name, happened=Event())
    assert repr(name) in str(excinfo.value)
    assert isinstance(excinfo.value, LightbusError)


@pytest.mark.parametrize("name", ["default", "default.auth"])
def test_reserved_api_names(name):
    with pytest.raises(InvalidName, match="reserved"):
        _define(name=name, happened=Event())
    assert catalogue.get(name) is None


@pytest.mark.parametrize("attribute", ["_private", "bad-name", "9lives", "with space"])
def test_invalid_event_names(attribute):
    with pytest.raises(InvalidName, match="Invalid event name") as excinfo:
        _define(name="core_defs_bad_event", **{attribute: Event(parameters=("x",))})
    assert repr(attribute) in str(excinfo.value)


@pytest.mark.parametrize("name", ["a-b", "1a", "", "a b", "naïve-", 5])
def test_invalid_parameter_names(name):
    with pytest.raises(InvalidName, match="Invalid parameter name") as excinfo:
        _define(name="core_defs_bad_param", happened=Event(parameters=[Parameter(name)]))
    assert "core_defs_bad_param.happened" in str(excinfo.value)


def test_duplicate_parameters():
    with pytest.raises(InvalidApiDefinition, match=r"declared twice: email") as excinfo:
        _define(name="core_defs_dup", happened=Event(parameters=(
            "username", "email", Parameter("email", str))))
    assert "core_defs_dup.happened" in str(excinfo.value)


@pytest.mark.parametrize("parameters", [5, {"username": str}, [("username", str)], [str]])
def test_parameters_must_be_names_or_parameter_objects(parameters):
    with pytest.raises(InvalidApiDefinition, match="parameter") as excinfo:
        _define(name="core_defs_shape", happened=Event(parameters=parameters))
    assert "core_defs_shape.happened" in str(excinfo.value)


class _Arbitrary:
    pass


@dataclasses.dataclass
class _WithTime:
    at: datetime.time


@dataclasses.dataclass
class _Node:
    value: int
    children: "list[_Node]"


@pytest.mark.parametrize("tp, needle", [
    (datetime.time, "time"),
    (_Arbitrary, "_Arbitrary"),
    (list[datetime.time], "time"),
    (Optional[_Arbitrary], "_Arbitrary"),
    (dict[int, str], "dict keys must be str"),
    (_WithTime, "_WithTime.at"),
    (_Node, "contains itself"),
    ("str", "'str'"),
])
def test_unsupported_types(tp, needle):
    with pytest.raises(UnsupportedParameterType) as excinfo:
        _define(name="core_defs_types", happened=Event(parameters=[Parameter("value", tp)]))
    message = str(excinfo.value)
    assert needle in message and "'value'" in message and "core_defs_types.happened" in message
    assert catalogue.get("core_defs_types") is None


@pytest.mark.parametrize("tp, default", [
    (int, "0"),
    (int, True),  # bool is not an int on the bus
    (bool, 0),
    (str, 5),
    (datetime.datetime, "2024-01-01T00:00:00"),
    (datetime.date, datetime.datetime(2024, 1, 1)),
    (decimal.Decimal, 1.5),
    (list[int], [1, "2"]),
    (dict[str, int], {"a": "1"}),
])
def test_default_must_match_the_type(tp, default):
    with pytest.raises(InvalidApiDefinition, match="does not match its type") as excinfo:
        _define(name="core_defs_default", happened=Event(parameters=[Parameter("value", tp, default=default)]))
    assert repr(default) in str(excinfo.value) and "'value'" in str(excinfo.value)


@pytest.mark.parametrize("version", ["2", -1, True, 1.5])
def test_meta_version_must_be_a_non_negative_int(version):
    with pytest.raises(InvalidApiDefinition, match="Meta.version"):
        _define(name="core_defs_version", version=version, happened=Event())


def test_a_failed_definition_leaves_nothing_behind(bus):
    catalogue_before = set(catalogue.names())
    with pytest.raises(UnsupportedParameterType):
        _define(name="core_defs_never", happened=Event(parameters=[Parameter("at", datetime.time)]))
    assert set(catalogue.names()) == catalogue_before
    with pytest.raises(lightbus_sync.UnknownApi):
        bus.core_defs_never


def test_typing_aliases_and_pep604_unions_are_supported():
    api = _define("core_defs_aliases", happened=Event(parameters=[
        Parameter("a", typing.List[int]),
        Parameter("b", typing.Dict[str, float]),
        Parameter("c", int | None, default=None),
        Parameter("d", typing.Tuple[int, str]),
        Parameter("e", typing.Literal["x", "y"], default="x"),
    ]))
    assert api.definition.events["happened"].parameter_names == ("a", "b", "c", "d", "e")


def test_an_event_cannot_be_called_definition():
    with pytest.raises(InvalidName, match="cannot be called 'definition'"):
        _define(name="core_defs_reserved_event", definition=Event(parameters=("x",)))


def test_an_event_called_event_is_reachable_as_an_attribute(bus, redis_client):
    _define(name="core_defs_event_named_event", event=Event(parameters=("x",)), other=Event())
    api = bus.core_defs_event_named_event
    assert isinstance(api.event, EventClient) and api.event.canonical_name == "core_defs_event_named_event.event"
    message = api.event.fire(x=1)
    assert redis_client.xrange("core_defs_event_named_event.*:stream")[0][0].decode() == message.stream_id
    assert api.other.canonical_name.endswith(".other")
    assert api.definition.name == "core_defs_event_named_event"
