"""fire(): the checks made before anything is written (each its own LightbusError
class), the EventMessage it returns, fire_async() and fire_many()."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Any, Optional

import attrs
import pytest
import redis

import lightbus_sync
from lightbus_sync import Api, Event, EventMessage, Parameter
from lightbus_sync.errors import (
    InvalidFireCall,
    InvalidName,
    InvalidParameterValue,
    LightbusError,
    MissingParameter,
    PositionalArgumentsNotAllowed,
    UnexpectedParameter,
    UnknownApi,
    UnknownEvent,
)
from lightbus_sync.wire import decode_entry

STREAM = "core_fire.auth.*:stream"


class Role(enum.Enum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclasses.dataclass
class Profile:
    nickname: str
    age: int


class CoreFireAuthApi(Api):
    # the user's page: untyped parameters
    user_created = Event(parameters=("username", "email"))
    user_deleted = Event(parameters=("username"))
    # the user's page: type hints and a default
    permission_changed = Event(parameters=(
        Parameter("username", str),
        Parameter("is_admin", bool, default=False),
    ))
    typed = Event(parameters=(
        Parameter("count", int, default=0),
        Parameter("ratio", float, default=0.0),
        Parameter("tags", list[int], default=[]),
        Parameter("scores", dict[str, int], default={}),
        Parameter("role", Role, default=Role.MEMBER),
        Parameter("day", datetime.date, default=datetime.date(2000, 1, 1)),
        Parameter("when", Optional[datetime.datetime], default=None),
        Parameter("amount", decimal.Decimal, default=decimal.Decimal("0")),
        Parameter("profile", Optional[Profile], default=None),
        Parameter("anything", Any, default=None),
    ))

    class Meta:
        name = "core_fire.auth"


@pytest.fixture
def bus(redis_url):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="core-fire")
    yield bus
    bus.close()


def _nothing_written(redis_client: redis.Redis) -> None:
    assert redis_client.xlen(STREAM) == 0
    assert redis_client.dbsize() == 0, redis_client.keys()  # no stream, no schema either


# --- checks before anything is written ------------------------------------------------


def test_the_pages_mistake_names_the_bad_parameter_and_lists_the_good_ones(bus, redis_client):
    with pytest.raises(UnexpectedParameter) as excinfo:
        bus.core_fire.auth.user_created.fire(username="adam", password="adam@example.com")
    message = str(excinfo.value)
    assert "'password'" in message
    assert "username, email" in message
    assert "missing: 'email'" in message
    assert "core_fire.auth.user_created" in message
    _nothing_written(redis_client)


def test_a_misspelt_parameter_gets_a_suggestion(bus, redis_client):
    with pytest.raises(UnexpectedParameter, match=r"'emial'.*did you mean 'email'\?"):
        bus.core_fire.auth.user_created.fire(username="adam", emial="adam@example.com")
    _nothing_written(redis_client)


def test_missing_required_parameter(bus, redis_client):
    with pytest.raises(MissingParameter, match=r"missing required parameter\(s\) 'email'.*username, email"):
        bus.core_fire.auth.user_created.fire(username="adam")
    with pytest.raises(MissingParameter, match=r"'username'"):
        bus.core_fire.auth.permission_changed.fire(is_admin=True)
    _nothing_written(redis_client)


def test_positional_arguments_are_refused(bus, redis_client):
    with pytest.raises(PositionalArgumentsNotAllowed, match=r"keyword arguments only \(username, email\)"):
        bus.core_fire.auth.user_created.fire("adam", "adam@example.com")
    with pytest.raises(PositionalArgumentsNotAllowed):
        bus.core_fire.auth.user_deleted.fire("adam")
    _nothing_written(redis_client)


@pytest.mark.parametrize("event, kwargs, needle", [
    ("permission_changed", {"username": "adam", "is_admin": "yes"}, "'is_admin' expects bool"),
    ("permission_changed", {"username": "adam", "is_admin": 1}, "'is_admin' expects bool"),
    ("permission_changed", {"username": 5}, "'username' expects str"),
    ("permission_changed", {"username": b"adam"}, "'username' expects str"),
    ("typed", {"count": True}, "'count' expects int"),  # bool is not an int
    ("typed", {"count": "5"}, "'count' expects int"),  # no silent casting
    ("typed", {"count": 5.0}, "'count' expects int"),
    ("typed", {"ratio": False}, "'ratio' expects float"),
    ("typed", {"ratio": "0.5"}, "'ratio' expects float"),
    ("typed", {"tags": [1, True]}, "[1]"),
    ("typed", {"tags": (1, 2)}, "'tags' expects list[int]"),
    ("typed", {"scores": {1: 2}}, "str keys"),
    ("typed", {"scores": {"a": "2"}}, "['a']"),
    ("typed", {"role": "admin"}, "a member of Role"),
    ("typed", {"day": datetime.datetime(2024, 1, 1)}, "'day' expects date"),
    ("typed", {"day": "2024-01-01"}, "'day' expects date"),
    ("typed", {"when": "2024-01-01T00:00:00"}, "'when' expects Optional[datetime]"),
    ("typed", {"amount": 1.5}, "'amount' expects Decimal"),
    ("typed", {"profile": {"nickname": "a", "age": 1}}, "'profile'"),
    ("typed", {"profile": Profile("a", "1")}, ".age"),
    ("typed", {"anything": object()}, "cannot be encoded"),
    ("typed", {"anything": float("nan")}, "cannot be encoded"),
    ("typed", {"anything": datetime.time(12, 0)}, "cannot be encoded"),
    ("typed", {"anything": {1: "a", "b": 2}}, "cannot be encoded"),
])
def test_wrong_types_are_refused_without_casting(bus, redis_client, event, kwargs, needle):
    with pytest.raises(InvalidParameterValue) as excinfo:
        bus.core_fire.auth.event(event).fire(**kwargs)
    assert needle in str(excinfo.value), str(excinfo.value)
    _nothing_written(redis_client)


def test_unknown_event_suggests_the_right_one(bus, redis_client):
    with pytest.raises(UnknownEvent) as excinfo:
        bus.core_fire.auth.user_craeted.fire(username="adam", email="a@example.com")
    message = str(excinfo.value)
    assert "'user_craeted'" in message and "did you mean 'user_created'?" in message
    assert "permission_changed, typed, user_created, user_deleted" in message
    _nothing_written(redis_client)


def test_unknown_api_suggests_the_right_one(bus, redis_client):
    with pytest.raises(UnknownApi) as excinfo:
        bus.core_fire.auht
    assert "'core_fire.auht'" in str(excinfo.value)
    assert "did you mean 'core_fire.auth'?" in str(excinfo.value)
    with pytest.raises(UnknownApi):
        bus.api("core_fire_nothing_here").some_event.fire()
    _nothing_written(redis_client)


def test_invalid_api_name_in_a_lookup(bus, redis_client):
    with pytest.raises(InvalidName, match="Invalid API name 'core fire'"):
        bus.api("core fire")
    _nothing_written(redis_client)


def test_each_mistake_has_its_own_class_under_lightbus_error():
    classes = [UnexpectedParameter, MissingParameter, PositionalArgumentsNotAllowed,
               InvalidParameterValue, UnknownEvent, UnknownApi, InvalidName]
    assert len(set(classes)) == len(classes)
    for cls in classes:
        assert issubclass(cls, LightbusError)
    for cls in classes[:4]:
        assert issubclass(cls, InvalidFireCall) and issubclass(cls, TypeError)
    # code catching the builtins keeps working
    assert issubclass(UnknownApi, AttributeError) and issubclass(UnknownEvent, AttributeError)
    assert issubclass(InvalidName, ValueError)


# --- what fire() returns ---------------------------------------------------------------


def test_fire_returns_a_frozen_event_message_matching_the_entry(bus, redis_client):
    message = bus.core_fire.auth.permission_changed.fire(username="adam")
    assert isinstance(message, EventMessage)
    assert (message.api_name, message.event_name, message.version) == ("core_fire.auth", "permission_changed", 1)
    assert message.canonical_name == "core_fire.auth.permission_changed"
    assert dict(message.kwargs) == {"username": "adam", "is_admin": False}  # default filled in
    assert message.stream == STREAM
    uuid.UUID(message.id)
    [(entry_id, fields)] = redis_client.xrange(STREAM)
    assert message.stream_id == message.native_id == entry_id.decode()
    raw = decode_entry(fields)
    assert (raw.id, raw.api_name, raw.event_name, raw.version) == (
        message.id, "core_fire.auth", "permission_changed", 1)
    assert raw.parameters == {"username": "adam", "is_admin": False}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.id = "other"  # type: ignore[misc]


def test_every_fire_gets_its_own_event_id_and_a_later_stream_id(bus, redis_client):
    messages = [bus.core_fire.auth.user_deleted.fire(username=f"u{i}") for i in range(20)]
    assert len({m.id for m in messages}) == 20
    ids = [tuple(map(int, m.stream_id.split("-"))) for m in messages]
    assert ids == sorted(ids)
    assert [e[0].decode() for e in redis_client.xrange(STREAM)] == [m.stream_id for m in messages]


def test_fire_async(bus, redis_client):
    async def main():
        return await asyncio.gather(*(
            bus.core_fire.auth.user_created.fire_async(username=f"u{i}", email=f"u{i}@example.com")
            for i in range(5)))

    messages = asyncio.run(main())
    assert all(isinstance(m, EventMessage) for m in messages)
    on_redis = {e[0].decode(): decode_entry(e[1]) for e in redis_client.xrange(STREAM)}
    assert set(on_redis) == {m.stream_id for m in messages}
    for m in messages:
        assert on_redis[m.stream_id].id == m.id
        assert on_redis[m.stream_id].parameters == dict(m.kwargs)


def test_fire_async_raises_the_same_errors(bus, redis_client):
    with pytest.raises(UnexpectedParameter, match="'password'"):
        asyncio.run(bus.core_fire.auth.user_created.fire_async(username="adam", password="x"))
    _nothing_written(redis_client)


# --- fire_many -------------------------------------------------------------------------


def test_fire_many_writes_in_order_and_returns_ids_in_order(bus, redis_client):
    calls = [{"username": f"u{i}", "is_admin": i % 2 == 0} for i in range(50)]
    messages = bus.core_fire.auth.permission_changed.fire_many(calls)
    assert [dict(m.kwargs) for m in messages] == calls
    entries = redis_client.xrange(STREAM)
    assert [e[0].decode() for e in entries] == [m.stream_id for m in messages]
    assert [decode_entry(e[1]).id for e in entries] == [m.id for m in messages]
    assert len({m.id for m in messages}) == 50


def test_fire_many_checks_everything_first(bus, redis_client):
    calls = [{"username": "a"}, {"username": "b"}, {"username": "c", "is_admin": "no"}, {"username": "d"}]
    with pytest.raises(InvalidParameterValue, match=r"item 2.*'is_admin'.*nothing was fired"):
        bus.core_fire.auth.permission_changed.fire_many(calls)
    with pytest.raises(MissingParameter, match=r"item 1"):
        bus.core_fire.auth.permission_changed.fire_many([{"username": "a"}, {}])
    with pytest.raises(InvalidFireCall, match=r"item 1 is str"):
        bus.core_fire.auth.permission_changed.fire_many([{"username": "a"}, "b"])
    _nothing_written(redis_client)
    assert bus.core_fire.auth.permission_changed.fire_many([]) == []
    assert bus.core_fire.auth.permission_changed.fire_many(iter([{"username": "x"}]))[0].kwargs["username"] == "x"


def test_fire_many_is_one_round_trip(bus, redis_client, monkeypatch):
    bus.core_fire.auth.user_deleted.fire(username="warm-up")  # connects, publishes the schema
    sent: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, *args, **kwargs):
        sent.append(1)
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    messages = bus.core_fire.auth.user_deleted.fire_many([{"username": f"u{i}"} for i in range(100)])
    monkeypatch.undo()
    assert len(messages) == 100 and redis_client.xlen(STREAM) == 101
    assert len(sent) == 1


def test_an_unknown_api_is_unknown_even_when_redis_is_down(fresh_redis_server):
    """Looking up an API this process does not define asks the bus for its schema; with
    Redis down that is still an UnknownApi (an AttributeError, so hasattr() works)."""
    bus = lightbus_sync.create(redis_url=fresh_redis_server.url, service_name="core-fire")
    try:
        fresh_redis_server.kill()
        assert not hasattr(bus, "core_fire_elsewhere")
        with pytest.raises(UnknownApi, match=r"could not be read \(ConnectionError"):
            bus.api("core_fire_elsewhere")
        assert bus.core_fire.auth.user_deleted.definition.parameter_names == ("username",)  # local: no Redis
    finally:
        bus.close()


def test_a_parameter_name_that_is_not_a_string_is_refused_by_name(bus, redis_client):
    with pytest.raises(UnexpectedParameter, match=r"item 0.*unexpected parameter\(s\) 3"):
        bus.core_fire.auth.permission_changed.fire_many([{"username": "a", 3: 4}])
    with pytest.raises(UnexpectedParameter, match=r"unexpected parameter\(s\) 3"):
        bus.core_fire.auth.permission_changed.fire_many([{3: 4}])  # with nothing to suggest
    _nothing_written(redis_client)


def test_fire_observers_are_told_of_fire_and_fire_many_only_while_they_observe(bus, redis_client):
    from lightbus_sync.observers import Observer

    seen: list[EventMessage] = []

    class Fired(Observer):
        def on_fired(self, message):
            seen.append(message)

    class Wraps(Observer):
        pass

    event = bus.core_fire.auth.permission_changed
    bus.add_observer(Wraps())
    assert not bus.observers.fire_observed  # an observer without on_fired costs fire() nothing
    event.fire(username="before")
    observer = bus.add_observer(Fired())
    one = event.fire(username="a")
    many = event.fire_many([{"username": "b"}, {"username": "c", "is_admin": True}])
    bus.observers.remove(observer)
    event.fire(username="after")
    assert seen == [one, *many]
    assert redis_client.xlen(STREAM) == 5


@pytest.mark.parametrize("kind", ["raises", "adds a field", "no-op"])
def test_a_single_firing_observer_never_breaks_a_fire(bus, redis_client, caplog, kind):
    import contextlib

    from lightbus_sync.observers import Observer

    class One(Observer):
        def firing(self, fire):
            if kind == "raises":
                raise RuntimeError("broken observer")
            return contextlib.nullcontext({"x-tenant": "t1"} if kind == "adds a field" else None)

    bus.add_observer(One())
    one = bus.core_fire.auth.permission_changed.fire(username="a")
    many = bus.core_fire.auth.permission_changed.fire_many([{"username": "b"}])
    entries = redis_client.xrange(STREAM)
    assert [e[0].decode() for e in entries] == [one.stream_id, many[0].stream_id]
    assert all(b"x-tenant" not in fields for _, fields in entries)
    expected = {"raises": "failed in firing()", "adds a field": "added the field(s) x-tenant", "no-op": None}[kind]
    if expected:
        assert caplog.text.count(expected) == 2
    else:
        assert "observer" not in caplog.text
