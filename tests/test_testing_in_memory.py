"""lightbus_sync.testing.in_memory: fire() runs the bus's listeners in memory, through
the runner's own decoding, casting, retries and dead letters; nothing reaches Redis."""

from __future__ import annotations

import datetime
import threading

import pytest

import lightbus_sync
from lightbus_sync import Api, DeadLetter, Event, EventMessage, Parameter
from lightbus_sync.testing import in_memory


class MemShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("placed_at", datetime.datetime)))
    order_paid = Event(parameters=(Parameter("order_id", int),))
    receipt_sent = Event(parameters=(Parameter("order_id", int), Parameter("to", str)))
    note_added = Event(parameters=("note",))  # any JSON value

    class Meta:
        name = "mem.shop"


UNREACHABLE = "redis://127.0.0.1:1/0"  # a fire that reached Redis would fail


@pytest.fixture
def bus():
    bus = lightbus_sync.create(redis_url=UNREACHABLE, service_name="mem",
                               config={"apis": {"default": {"event_fire_timeout": 0.2}}})
    yield bus
    bus.close()


NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def test_fire_runs_the_listener_in_this_thread_with_cast_values(bus):
    seen = []

    def on_placed(event_message: EventMessage, order_id: int, placed_at: datetime.datetime):
        seen.append((threading.current_thread(), order_id, placed_at, event_message.delivery_count))

    bus.mem.shop.order_placed.listen(on_placed, listener_name="audit")
    with in_memory(bus) as broker:
        message = bus.mem.shop.order_placed.fire(order_id=1, placed_at=NOW)
        assert seen == [(threading.current_thread(), 1, NOW, 1)]  # handled before fire() returned
    assert broker.outcomes == {("audit", message.stream_id): "acked"}
    assert [m.id for m in broker.fired("mem.shop.order_placed")] == [message.id]


def test_a_chain_of_events_runs_to_its_end_and_follow_up_fires_stay_in_memory(bus):
    order = []

    def pay(order_id):
        order.append(("pay", order_id))
        bus.mem.shop.order_paid.fire(order_id=order_id)

    def send_receipt(order_id):
        order.append(("receipt", order_id))
        bus.mem.shop.receipt_sent.fire(order_id=order_id, to="adam@example.com")

    def log_receipt(order_id, to):
        order.append(("sent", to))

    bus.mem.shop.order_placed.listen(lambda order_id, placed_at: pay(order_id), listener_name="pay")
    bus.mem.shop.order_paid.listen(send_receipt, listener_name="receipt")
    bus.mem.shop.receipt_sent.listen(log_receipt, listener_name="log")
    with in_memory(bus) as broker:
        bus.mem.shop.order_placed.fire(order_id=7, placed_at=NOW)
    assert order == [("pay", 7), ("receipt", 7), ("sent", "adam@example.com")]
    assert [m.canonical_name for m in broker.fired()] == [
        "mem.shop.order_placed", "mem.shop.order_paid", "mem.shop.receipt_sent"]


def test_not_eager_events_wait_for_drain(bus):
    seen = []
    bus.mem.shop.order_paid.listen(lambda order_id: seen.append(order_id), listener_name="paid")
    with in_memory(bus, eager=False) as broker:
        bus.mem.shop.order_paid.fire_many([{"order_id": 1}, {"order_id": 2}])
        assert seen == [] and broker.pending() == 2
        assert broker.drain() == 2
        assert seen == [1, 2] and broker.pending() == 0


def test_a_failing_handler_is_retried_at_once_then_dead_lettered(bus):
    runs = []

    def flaky(order_id):
        runs.append(order_id)
        raise ValueError(f"cannot pay {order_id}")

    bus.mem.shop.order_paid.listen(flaky, listener_name="flaky", max_deliveries=3, retry_backoff=(60, 600))
    with in_memory(bus) as broker:
        message = bus.mem.shop.order_paid.fire(order_id=5)
    assert runs == [5, 5, 5]  # no backoff waited
    (dead,) = broker.dead_letters
    assert (dead.listener, dead.reason, dead.error_type, dead.error, dead.delivery_count, dead.event_id) == (
        "flaky", "max deliveries reached", "ValueError", "cannot pay 5", 3, message.id)
    assert broker.outcomes == {("flaky", message.stream_id): "dead_lettered"}


def test_a_handler_that_succeeds_on_a_retry_is_acked(bus):
    runs = []

    def second_time_lucky(event_message: EventMessage, order_id):
        runs.append(event_message.delivery_count)
        if len(runs) == 1:
            raise ConnectionError("try again")

    bus.mem.shop.order_paid.listen(second_time_lucky, listener_name="lucky")
    with in_memory(bus) as broker:
        message = bus.mem.shop.order_paid.fire(order_id=5)
    assert runs == [1, 2] and broker.dead_letters == []
    assert broker.outcomes == {("lucky", message.stream_id): "acked"}


def test_dead_letter_exceptions_skip_the_retries(bus):
    class Refused(Exception):
        pass

    def refuse(order_id):
        raise Refused("never")

    def give_up(order_id):
        raise DeadLetter("not ours")

    bus.mem.shop.order_paid.listen(refuse, listener_name="refuse", dead_letter_on=(Refused,))
    bus.mem.shop.order_paid.listen(give_up, listener_name="give_up")
    with in_memory(bus) as broker:
        bus.mem.shop.order_paid.fire(order_id=1)
    assert sorted((d.listener, d.reason, d.delivery_count) for d in broker.dead_letters) == [
        ("give_up", "handler marked permanent", 1), ("refuse", "handler marked permanent", 1)]


def test_an_event_the_handler_cannot_take_is_dead_lettered_as_invalid(bus):
    """The listener's casts: a handler annotated with a richer type than the event's."""
    def wants_a_number(note: int):  # "abc" cannot become one
        pass

    bus.mem.shop.note_added.listen(wants_a_number, listener_name="numbers")
    seen = []
    bus.mem.shop.note_added.listen(lambda note: seen.append(note), listener_name="ok")
    with in_memory(bus) as broker:
        bus.mem.shop.note_added.fire(note="abc")
    assert seen == ["abc"]  # the other listener got it
    (dead,) = broker.dead_letters
    assert (dead.listener, dead.reason, dead.error_type) == ("numbers", "invalid", "InvalidIncomingEvent")
    assert "note" in dead.error


def test_on_error_ack_and_log_and_stop(bus):
    def fails(order_id):
        raise RuntimeError("boom")

    bus.mem.shop.order_paid.listen(fails, listener_name="logged", on_error="ack_and_log")
    with in_memory(bus) as broker:
        message = bus.mem.shop.order_paid.fire(order_id=1)
    assert broker.outcomes == {("logged", message.stream_id): "acked"} and broker.failure is None


def test_on_error_stop_stops_handling(bus):
    runs = []

    def fails(order_id):
        runs.append(order_id)
        raise RuntimeError("boom")

    bus.mem.shop.order_paid.listen(fails, listener_name="stopper", on_error="stop")
    with in_memory(bus) as broker:
        first = bus.mem.shop.order_paid.fire(order_id=1)
        bus.mem.shop.order_paid.fire(order_id=2)
    assert runs == [1]
    assert "listener 'stopper' handler failed with RuntimeError: boom" in broker.failure
    assert broker.outcomes == {("stopper", first.stream_id): "pending"}


def test_the_fire_checks_are_the_same_and_nothing_is_written_for_a_bad_call(bus):
    bus.mem.shop.order_paid.listen(lambda order_id: None, listener_name="paid")
    with in_memory(bus) as broker:
        with pytest.raises(lightbus_sync.InvalidParameterValue, match="parameter 'order_id' expects int"):
            bus.mem.shop.order_paid.fire(order_id="one")
    assert broker.entries == [] and broker.outcomes == {}


def test_the_bus_writes_to_redis_again_afterwards(bus):
    with in_memory(bus):
        bus.mem.shop.order_paid.fire(order_id=1)
    with pytest.raises(lightbus_sync.BusUnavailable):
        bus.mem.shop.order_paid.fire(order_id=2)


def test_a_runner_cannot_run_on_the_in_memory_transport(bus):
    bus.mem.shop.order_paid.listen(lambda order_id: None, listener_name="paid")
    with in_memory(bus):
        with pytest.raises(AttributeError, match="the bus is in memory"):
            bus.transport_for("mem.shop").read_group


def test_the_package_gives_the_function_in_memory_whichever_name_is_imported_first():
    import subprocess
    import sys

    script = (
        "import types\n"
        "from lightbus_sync.testing import InMemoryBroker\n"  # loads the submodule in_memory first
        "from lightbus_sync.testing import in_memory\n"
        "assert not isinstance(in_memory, types.ModuleType) and callable(in_memory), in_memory\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
