"""lightbus_sync.testing.deliver: listeners' handlers run synchronously, in this thread,
on an event encoded as fire() encodes it and decoded as the runner decodes it."""

from __future__ import annotations

import dataclasses
import datetime
import socket
import threading
import uuid
from decimal import Decimal
from typing import Any

import attrs
import pytest

import lightbus_sync
from lightbus_sync import Api, Event, EventMessage, InvalidIncomingEvent, MissingParameter, Parameter
from lightbus_sync.testing import Delivery, deliver, record_events


@dataclasses.dataclass
class Address:
    street: str
    number: int


@attrs.define
class Profile:
    nickname: str
    age: int


class DeliverApi(Api):
    user_created = Event(parameters=(Parameter("username", str), Parameter("email", str)))
    user_deleted = Event(parameters=(Parameter("username", str),))
    typed = Event(parameters=(
        Parameter("count", int),
        Parameter("when", datetime.datetime),
        Parameter("amount", Decimal),
        Parameter("uid", uuid.UUID),
        Parameter("address", Address),
        Parameter("profile"),
        Parameter("flag", bool, default=False),
    ))

    class Meta:
        name = "dlv.auth"


def dead_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def offline_bus():
    bus = lightbus_sync.create(redis_url=dead_redis_url(), service_name="dlv", process_name="dlv-1",
                               config={"apis": {"default": {"event_fire_timeout": 0.3}}})
    yield bus
    bus.close()


def test_every_listener_of_the_event_runs_in_this_thread_and_results_come_back(offline_bus):
    calls: list[tuple[str, Any, int]] = []

    def store_user(username, email):
        calls.append(("store_user", (username, email), threading.get_ident()))
        return f"stored {username}"

    def welcome(event_message: EventMessage, **kwargs):
        calls.append(("welcome", event_message, threading.get_ident()))

    def on_deleted(username):
        calls.append(("on_deleted", username, threading.get_ident()))

    offline_bus.dlv.auth.user_created.listen(store_user, listener_name="store_user")
    offline_bus.dlv.auth.user_created.listen(welcome, listener_name="welcome")
    offline_bus.dlv.auth.user_deleted.listen(on_deleted, listener_name="on_deleted")

    deliveries = deliver(offline_bus, "dlv.auth.user_created", username="adam", email="adam@example.com")

    assert [type(d) for d in deliveries] == [Delivery, Delivery]
    assert [(d.listener, d.result) for d in deliveries] == [("store_user", "stored adam"), ("welcome", None)]
    assert [c[0] for c in calls] == ["store_user", "welcome"]  # registration order; not on_deleted
    assert {c[2] for c in calls} == {threading.get_ident()}
    message = calls[1][1]
    assert isinstance(message, EventMessage) and message == deliveries[1].message
    assert message.canonical_name == "dlv.auth.user_created"
    assert message.kwargs == {"username": "adam", "email": "adam@example.com"}
    assert message.delivery_count == 1 and message.stream == "dlv.auth.*:stream"
    assert deliveries[0].message.id == message.id  # one event, delivered to each listener


def test_listen_many_listener_and_listener_selection(offline_bus):
    got = []
    offline_bus.listen_many(
        [offline_bus.dlv.auth.user_created, offline_bus.dlv.auth.user_deleted],
        lambda event_message, **kw: got.append(event_message.event_name), listener_name="audit",
    )
    offline_bus.dlv.auth.user_deleted.listen(lambda username: got.append("other"), listener_name="other")
    deliver(offline_bus, offline_bus.dlv.auth.user_deleted, username="adam", listeners=["audit"])
    assert got == ["user_deleted"]
    with pytest.raises(LookupError, match="no listener named nope is registered for dlv.auth.user_deleted"):
        deliver(offline_bus, "dlv.auth.user_deleted", username="adam", listeners=["nope"])


def test_no_listener_for_the_event_is_an_error(offline_bus):
    with pytest.raises(LookupError, match="no listener is registered for dlv.auth.user_created.*none"):
        deliver(offline_bus, "dlv.auth.user_created", username="a", email="a@x")


def test_handler_errors_propagate(offline_bus):
    def broken(username, email):
        raise ValueError(f"cannot store {username}")

    offline_bus.dlv.auth.user_created.listen(broken, listener_name="broken")
    with pytest.raises(ValueError, match="cannot store adam"):
        deliver(offline_bus, "dlv.auth.user_created", username="adam", email="a@x")


def test_the_fire_checks_apply(offline_bus):
    offline_bus.dlv.auth.user_created.listen(lambda username, email: None, listener_name="l")
    with pytest.raises(MissingParameter) as delivered:
        deliver(offline_bus, "dlv.auth.user_created", username="adam")
    with pytest.raises(MissingParameter) as fired:
        offline_bus.dlv.auth.user_created.fire(username="adam")
    assert str(delivered.value) == str(fired.value)


def test_an_event_the_runner_would_dead_letter_raises_invalid_incoming_event(offline_bus):
    def on_typed(count, when, amount, uid, address, profile: Profile, flag):
        pytest.fail("must not be called")

    offline_bus.dlv.auth.typed.listen(on_typed, listener_name="typed")
    with pytest.raises(InvalidIncomingEvent, match="'profile'"):
        deliver(offline_bus, "dlv.auth.typed", count=1, when=datetime.datetime.now(datetime.timezone.utc),
                amount=Decimal("1"), uid=uuid.uuid4(), address=Address("a", 1), profile={"wrong": True})


def test_deliver_works_while_recording(offline_bus):
    def cascade(username, email):
        offline_bus.dlv.auth.user_deleted.fire(username=username)

    offline_bus.dlv.auth.user_created.listen(cascade, listener_name="cascade")
    with record_events(offline_bus) as recorder:
        deliver(offline_bus, "dlv.auth.user_created", username="adam", email="a@x")
    recorder.assert_fired_once("dlv.auth.user_deleted", username="adam")
    recorder.assert_not_fired("dlv.auth.user_created")  # delivering is not firing


def test_handlers_receive_exactly_what_the_runner_gives_them(redis_url):
    """The same handler, once through a real runner on Redis, once through deliver()."""
    bus = lightbus_sync.create(
        redis_url=redis_url, service_name="dlv", process_name="dlv-1",
        config={"apis": {"default": {"event_transport": {"redis": {"block_ms": 100}}}}},
    )
    received: list[dict] = []
    arrived = threading.Event()

    def on_typed(count, when, amount, uid, address, profile: Profile, flag):
        received.append(dict(count=count, when=when, amount=amount, uid=uid, address=address,
                             profile=profile, flag=flag))
        arrived.set()

    bus.dlv.auth.typed.listen(on_typed, listener_name="typed")
    call = dict(count=3, when=datetime.datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=datetime.timezone.utc),
                amount=Decimal("12.50"), uid=uuid.uuid4(), address=Address("Main St", 5),
                profile=Profile("ada", 36))
    try:
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            bus.dlv.auth.typed.fire(**call)
            assert arrived.wait(10)
        deliver(bus, "dlv.auth.typed", **call)
    finally:
        bus.close()
    via_runner, via_deliver = received
    assert via_deliver == via_runner == {**call, "flag": False}
    assert {k: type(v) for k, v in via_deliver.items()} == {k: type(v) for k, v in via_runner.items()}
    assert type(via_deliver["profile"]) is Profile  # the handler's richer annotation, as the runner does
