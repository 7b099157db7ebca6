"""lightbus_sync.testing.record_events / BusRecorder: fires are recorded, not written,
after exactly the checks of a real fire; the bus is given back untouched afterwards."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import socket
import threading
from decimal import Decimal

import pytest

import lightbus_sync
from lightbus_sync import Api, BusUnavailable, Event, EventMessage, Parameter
from lightbus_sync.errors import (
    InvalidFireCall,
    InvalidParameterValue,
    MissingParameter,
    PositionalArgumentsNotAllowed,
    SchemaMismatch,
    UnexpectedParameter,
    UnknownEvent,
)
from lightbus_sync.testing import BusRecorder, RecordedEvent, record_events


@dataclasses.dataclass
class Address:
    street: str
    number: int


class RecAuthApi(Api):
    user_created = Event(parameters=(
        Parameter("username", str),
        Parameter("email", str),
        Parameter("is_admin", bool, default=False),
    ))
    typed = Event(parameters=(
        Parameter("when", datetime.datetime),
        Parameter("amount", Decimal),
        Parameter("address", Address),
        Parameter("tags", list[str]),
        Parameter("extra"),
    ))

    class Meta:
        name = "rec.auth"


REMOTE_SCHEMA = {
    "rec.remote_billing": {
        "events": {
            "invoice_sent": {
                "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "invoice_id": {"type": "integer"},
                        "status": {"type": "string", "enum": ["paid", "refunded"]},
                    },
                    "required": ["invoice_id", "status"],
                    "title": "Event rec.remote_billing.invoice_sent parameters",
                }
            }
        },
        "rpcs": {},
    }
}


def dead_redis_url() -> str:
    """A URL where nothing listens: any write attempt fails fast with BusUnavailable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def offline_bus():
    """A bus whose Redis does not exist (fires give up after 0.3 s)."""
    bus = lightbus_sync.create(
        redis_url=dead_redis_url(), service_name="rec", process_name="rec-1",
        config={"apis": {"default": {"event_fire_timeout": 0.3}}},
    )
    yield bus
    bus.close()


def test_fire_records_a_real_event_message_without_redis(offline_bus):
    with record_events(offline_bus) as recorder:
        assert isinstance(recorder, BusRecorder) and recorder.active
        message = offline_bus.rec.auth.user_created.fire(username="adam", email="adam@example.com")
    assert not recorder.active
    assert isinstance(message, EventMessage)
    assert message.canonical_name == "rec.auth.user_created"
    assert message.kwargs == {"username": "adam", "email": "adam@example.com", "is_admin": False}
    assert message.stream == "rec.auth.*:stream"
    ms, seq = message.stream_id.split("-")
    assert ms.isdigit() and seq.isdigit()
    assert recorder.fired("rec.auth.user_created") == [message]
    assert recorder.messages == [message]
    (record,) = recorder.records
    assert isinstance(record, RecordedEvent)
    # The exact Lightbus wire fields, as they would have been XADDed.
    assert list(record.fields) == ["id", "api_name", "event_name", "version", ":username", ":email", ":is_admin"]
    assert record.fields[":username"] == '"adam"' and record.fields["id"] == message.id
    # Once recording stops, the bus writes for real again (and here finds no Redis).
    with pytest.raises(BusUnavailable):
        offline_bus.rec.auth.user_created.fire(username="adam", email="adam@example.com")


def test_fire_many_and_fire_async_are_recorded_in_order(offline_bus):
    event = offline_bus.rec.auth.user_created
    with record_events(offline_bus) as recorder:
        first = event.fire(username="a", email="a@x")
        many = event.fire_many([{"username": "b", "email": "b@x"}, {"username": "c", "email": "c@x", "is_admin": True}])
        last = asyncio.run(event.fire_async(username="d", email="d@x"))
    assert recorder.messages == [first, *many, last]
    assert [m.kwargs["username"] for m in recorder.fired(event)] == ["a", "b", "c", "d"]
    ids = [m.stream_id for m in recorder.messages]
    assert len(set(ids)) == 4 and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))


BAD_CALLS = [
    ("positional", ("adam",), {"email": "a@x"}, PositionalArgumentsNotAllowed),
    ("missing", (), {"username": "adam"}, MissingParameter),
    ("unexpected", (), {"username": "adam", "emial": "a@x"}, UnexpectedParameter),
    ("wrong type", (), {"username": 7, "email": "a@x"}, InvalidParameterValue),
]


@pytest.mark.parametrize("name,args,kwargs,error", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_calls_raise_exactly_what_a_real_fire_raises_and_record_nothing(offline_bus, name, args, kwargs, error):
    event = offline_bus.rec.auth.user_created
    with pytest.raises(error) as real:
        event.fire(*args, **kwargs)  # the checks run before any write: no Redis needed
    with record_events(offline_bus) as recorder:
        with pytest.raises(error) as recorded:
            event.fire(*args, **kwargs)
        if not args:
            with pytest.raises(error, match="fire_many.. item 1"):
                event.fire_many([{"username": "ok", "email": "ok@x"}, kwargs])
    assert str(recorded.value) == str(real.value)
    assert recorder.messages == []  # fire_many: nothing, not even the good first item


def test_outgoing_schema_validation_of_a_remote_api_applies(offline_bus, tmp_path):
    schema_file = tmp_path / "schemas.json"
    schema_file.write_text(json.dumps(REMOTE_SCHEMA))
    assert offline_bus.schemas.load_files(schema_file) == ["rec.remote_billing"]
    event = offline_bus.rec.remote_billing.invoice_sent
    with pytest.raises(SchemaMismatch) as real:
        event.fire(invoice_id=1, status="lost")
    with record_events(offline_bus) as recorder:
        with pytest.raises(SchemaMismatch) as recorded:
            event.fire(invoice_id=1, status="lost")
        event.fire(invoice_id=2, status="paid")
    assert str(recorded.value) == str(real.value)
    recorder.assert_fired_once("rec.remote_billing.invoice_sent", invoice_id=2, status="paid")
    # the file schema is still the bus's afterwards
    assert offline_bus.schemas.remote_names() == ["rec.remote_billing"]


def test_recorded_parameters_are_cast_like_a_listener_gets_them(offline_bus):
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    with record_events(offline_bus) as recorder:
        fired = offline_bus.rec.auth.typed.fire(
            when=when, amount=Decimal("1.50"), address=Address("Main", 5), tags=["x"], extra={"k": (1, 2)}
        )
    (message,) = recorder.fired("rec.auth.typed")
    assert message.kwargs["when"] == when and type(message.kwargs["amount"]) is Decimal
    assert message.kwargs["address"] == Address("Main", 5)
    assert message.kwargs["extra"] == {"k": [1, 2]}  # untyped: the JSON value, as on the wire
    assert fired.kwargs["extra"] == {"k": (1, 2)}  # fire() returns what it was given
    assert (message.id, message.stream_id) == (fired.id, fired.stream_id)


def test_assert_fired_matches_a_subset_by_wire_value(offline_bus):
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    with record_events(offline_bus) as recorder:
        offline_bus.rec.auth.user_created.fire(username="adam", email="adam@example.com")
        offline_bus.rec.auth.user_created.fire(username="eve", email="eve@example.com", is_admin=True)
        offline_bus.rec.auth.typed.fire(when=when, amount=Decimal("1.5"), address=Address("Main", 5),
                                        tags=["a", "b"], extra=None)
    (adam,) = recorder.assert_fired("rec.auth.user_created", username="adam")
    assert adam.kwargs["email"] == "adam@example.com"
    assert len(recorder.assert_fired("rec.auth.user_created")) == 2
    recorder.assert_fired(offline_bus.rec.auth.user_created, is_admin=True, username="eve")
    # By wire value: a datetime, a Decimal, a dataclass or its JSON object, a tuple or a list.
    recorder.assert_fired("rec.auth.typed", when=when, amount=Decimal("1.50"), address={"street": "Main", "number": 5})
    recorder.assert_fired("rec.auth.typed", address=Address("Main", 5), tags=("a", "b"))
    recorder.assert_fired_once("rec.auth.user_created", username="eve")
    recorder.assert_not_fired("rec.auth.user_created", username="zed")

    with pytest.raises(AssertionError, match=r"to be fired with \{'username': 'zed'\}.*fired 2 time\(s\)") as info:
        recorder.assert_fired("rec.auth.user_created", username="zed")
    assert "'username': 'adam'" in str(info.value)
    with pytest.raises(AssertionError, match="fired once.*2 times"):
        recorder.assert_fired_once("rec.auth.user_created")
    with pytest.raises(AssertionError, match="not to be fired with"):
        recorder.assert_not_fired("rec.auth.user_created", username="adam")
    with pytest.raises(AssertionError, match="has no parameter.*'usrname'"):
        recorder.assert_fired("rec.auth.user_created", usrname="adam")


def test_event_names_are_checked_so_typos_cannot_pass(offline_bus):
    with record_events(offline_bus) as recorder:
        with pytest.raises(UnknownEvent, match="did you mean 'user_created'"):
            recorder.assert_not_fired("rec.auth.user_creatd")
        recorder.assert_not_fired("rec.auth.user_created")
        with pytest.raises(AssertionError, match="rec.auth.user_created was not fired; fired: nothing"):
            recorder.assert_fired("rec.auth.user_created")


def test_clear_forgets_and_keeps_recording(offline_bus):
    with record_events(offline_bus) as recorder:
        offline_bus.rec.auth.user_created.fire(username="a", email="a@x")
        recorder.clear()
        assert recorder.fired() == []
        offline_bus.rec.auth.user_created.fire(username="b", email="b@x")
    assert [m.kwargs["username"] for m in recorder.fired()] == ["b"]


def test_threads_fire_concurrently_while_recording(offline_bus):
    event = offline_bus.rec.auth.user_created

    def fire_many_times(worker: int) -> None:
        for index in range(50):
            event.fire(username=f"u{worker}-{index}", email="x@x")

    with record_events(offline_bus) as recorder:
        threads = [threading.Thread(target=fire_many_times, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    messages = recorder.fired(event)
    assert len(messages) == 400
    assert len({m.stream_id for m in messages}) == 400
    assert len({m.id for m in messages}) == 400


def test_recorders_nest_and_each_sees_its_own_block(offline_bus):
    event = offline_bus.rec.auth.user_created
    with record_events(offline_bus) as outer:
        event.fire(username="outer1", email="x@x")
        with record_events(offline_bus) as inner:
            event.fire(username="inner", email="x@x")
        event.fire(username="outer2", email="x@x")
    assert [m.kwargs["username"] for m in outer.fired()] == ["outer1", "outer2"]
    assert [m.kwargs["username"] for m in inner.fired()] == ["inner"]
    with pytest.raises(BusUnavailable):
        event.fire(username="after", email="x@x")


def test_a_recorder_cannot_start_twice():
    bus = lightbus_sync.create(redis_url=dead_redis_url(), service_name="rec")
    recorder = BusRecorder(bus).start()
    try:
        with pytest.raises(RuntimeError, match="already recording"):
            recorder.start()
    finally:
        recorder.stop()
        recorder.stop()  # idempotent
        bus.close()


def test_recording_leaves_redis_untouched_and_the_bus_as_it_was(redis_url, redis_client):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="rec", process_name="rec-1")
    try:
        event = bus.rec.auth.user_created
        with record_events(bus) as recorder:
            event.fire(username="adam", email="adam@example.com")
            event.fire_many([{"username": "eve", "email": "eve@example.com"}])
        assert redis_client.dbsize() == 0  # no stream, no schema
        # The schema the first fire would have published went to the recorder.
        assert json.loads(recorder.schemas["rec.auth"])["events"]["user_created"]
        # Afterwards the same client writes, and publishes its schema on its first real fire.
        message = event.fire(username="bob", email="bob@example.com")
        assert redis_client.xlen("rec.auth.*:stream") == 1
        assert redis_client.xrange("rec.auth.*:stream")[0][0].decode() == message.stream_id
        assert redis_client.exists("schema:rec.auth") == 1
        assert b"rec.auth" in redis_client.smembers("schemas")
    finally:
        bus.close()


def test_fire_observers_still_see_recorded_fires(offline_bus):
    from lightbus_sync.observers import Observer

    seen = []

    class Fires(Observer):
        def on_fired(self, message):
            seen.append(message)

    offline_bus.add_observer(Fires())
    with record_events(offline_bus):
        message = offline_bus.rec.auth.user_created.fire(username="adam", email="a@x")
    assert seen == [message]


def test_recording_transport_refuses_reading_with_a_clear_error(offline_bus):
    with record_events(offline_bus) as recorder:
        transport = offline_bus.transport_for("rec.auth")
        assert transport is recorder.transport
        with pytest.raises(AttributeError, match="cannot reading_client.*deliver"):
            transport.reading_client(1000)


def test_invalid_fire_call_is_the_base_of_recorded_errors(offline_bus):
    with record_events(offline_bus) as recorder:
        with pytest.raises(InvalidFireCall):
            offline_bus.rec.auth.user_created.fire(username="only")
    assert recorder.fired() == []
