"""Testing a Django project with the bus in memory: ``lightbus_in_memory`` (pytest-django)
and ``InMemoryBusMixin`` (``django.test.TestCase``, ``TransactionTestCase``), on SQLite and
PostgreSQL. What is fired in a transaction reaches the in-memory listeners (or a
recorder) when it commits: ``fire_on_commit`` fires then, ``bus.outbox()``'s rows are
relayed and deleted; in a ``TestCase``, only with ``captureOnCommitCallbacks(execute=True)``;
never on a rollback."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import TestCase, TransactionTestCase

from djtest.bus import received
from lightbus_sync.contrib.django import fire_on_commit, get_bus
from lightbus_sync.contrib.django.testing import InMemoryBusMixin, in_memory, outbox_events
from lightbus_sync.testing import InMemoryBroker
from lightbus_sync.transport import RedisTransport

EVENT = "shop.orders.order_placed"
STREAM = "shop.orders.*:stream"


class Rollback(Exception):
    pass


@pytest.fixture(autouse=True)
def nothing_received():
    received.clear()
    yield
    received.clear()


def shipments(using: str = "default") -> list[int]:
    from shipping.models import Shipment

    return list(Shipment.objects.using(using).order_by("order_id").values_list("order_id", flat=True))


def place(order_id: int, using: str = "default") -> None:
    """An order's event through the outbox, in a transaction on ``using``."""
    with transaction.atomic(using=using):
        get_bus().outbox(using=using).shop.orders.order_placed.fire(order_id=order_id, item="book", quantity=1)


def on_redis(redis_client) -> bool:
    """The bus writes to Redis again (its in-memory mode is off)."""
    bus = get_bus()
    assert isinstance(bus.transport_for("shop.orders"), RedisTransport)
    bus.shop.orders.order_placed.fire(order_id=99, item="real", quantity=1)
    return redis_client.xlen(STREAM) == 1


# --- pytest-django ------------------------------------------------------------------


@pytest.mark.django_db
def test_fire_on_commit_reaches_the_listeners_when_the_captured_callbacks_run(
        lightbus_in_memory, django_capture_on_commit_callbacks):
    assert isinstance(lightbus_in_memory, InMemoryBroker) and lightbus_in_memory.bus is get_bus()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            fire_on_commit(EVENT, order_id=1, item="book", quantity=2)
        assert received == []  # not before the commit's callbacks run
    assert len(callbacks) == 1
    assert [m.kwargs["order_id"] for m in lightbus_in_memory.fired(EVENT)] == [1]
    assert received == [{"order_id": 1, "item": "book", "quantity": 2}]
    assert shipments() == [1]  # the shipping app's inbox listener ran in the test's transaction


@pytest.mark.django_db
def test_without_executing_the_callbacks_nothing_is_fired(lightbus_in_memory, django_capture_on_commit_callbacks,
                                                         redis_client):
    with django_capture_on_commit_callbacks() as callbacks:
        fire_on_commit(EVENT, order_id=1, item="book", quantity=2)
        place(2)
    assert len(callbacks) == 2
    assert lightbus_in_memory.fired() == [] and received == [] and shipments() == []
    assert [m.kwargs["order_id"] for m in outbox_events(event=EVENT)] == [2]  # the row waits
    assert not redis_client.exists(STREAM)


@pytest.mark.django_db(databases=["default", "pg"])
@pytest.mark.parametrize("alias", ["default", "pg"])
def test_a_committed_outbox_row_is_relayed_in_memory_and_a_rolled_back_one_never(
        alias, lightbus_in_memory, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(using=alias, execute=True):
        with pytest.raises(Rollback):
            with transaction.atomic(using=alias):
                get_bus().outbox(using=alias).shop.orders.order_placed.fire(order_id=1, item="book", quantity=1)
                raise Rollback
        assert outbox_events(using=alias) == []
        place(2, using=alias)
        assert [m.kwargs["order_id"] for m in outbox_events(using=alias)] == [2]  # committed: relayed next
    assert [m.kwargs["order_id"] for m in lightbus_in_memory.fired(EVENT)] == [2]
    assert [r["order_id"] for r in received] == [2] and shipments() == [2]
    assert outbox_events(using=alias) == []  # relayed rows are deleted, as the relay deletes them


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
@pytest.mark.parametrize("alias", ["default", "pg"])
def test_a_real_commit_relays_at_once(alias, lightbus_in_memory):
    place(3, using=alias)
    assert [r["order_id"] for r in received] == [3] and shipments() == [3]
    with pytest.raises(Rollback):
        with transaction.atomic(using=alias):
            fire_on_commit(EVENT, using=alias, order_id=4, item="book", quantity=1)
            raise Rollback
    assert [m.kwargs["order_id"] for m in lightbus_in_memory.fired(EVENT)] == [3]
    assert outbox_events(using=alias) == []


@pytest.mark.django_db
def test_a_recorder_gets_the_committed_events_too(lightbus_recorder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        fire_on_commit(EVENT, order_id=5, item="book", quantity=1)
        place(6)
    assert [m.kwargs["order_id"] for m in lightbus_recorder.fired(EVENT)] == [5, 6]
    assert received == [] and outbox_events() == []  # recorded, not handled; the row relayed


@pytest.mark.django_db
def test_in_memory_is_undone_on_leaving(redis_client, django_capture_on_commit_callbacks):
    with in_memory() as broker:
        get_bus().shop.orders.order_placed.fire(order_id=7, item="book", quantity=1)
    assert [r["order_id"] for r in received] == [7] and not broker.active
    with django_capture_on_commit_callbacks(execute=True):
        place(8)  # no test mode: the row waits for a real relay
    assert [m.kwargs["order_id"] for m in outbox_events()] == [8]
    assert on_redis(redis_client)


# --- django.test.TestCase, TransactionTestCase (run by pytest-django) -----------------


class InMemoryTestCaseTests(InMemoryBusMixin, TestCase):
    databases = {"default", "pg"}

    def setUp(self) -> None:
        super().setUp()
        received.clear()

    def test_fire_on_commit_runs_the_listeners_with_the_callbacks_executed(self):
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            fire_on_commit(EVENT, order_id=1, item="book", quantity=2)
        self.assertEqual(len(callbacks), 1)
        self.assertEqual([m.kwargs["order_id"] for m in self.lightbus.fired(EVENT)], [1])
        self.assertEqual(shipments(), [1])

    def test_nothing_is_fired_without_executing_them(self):
        with self.captureOnCommitCallbacks() as callbacks, self.captureOnCommitCallbacks(using="pg") as on_pg:
            fire_on_commit(EVENT, order_id=1, item="book", quantity=2)
            place(2, using="pg")
        self.assertEqual((len(callbacks), len(on_pg)), (1, 1))
        self.assertEqual(self.lightbus.fired(), [])
        self.assertEqual(received, [])
        self.assertEqual([m.kwargs["order_id"] for m in outbox_events(using="pg")], [2])

    def test_outbox_rows_on_postgresql_are_relayed_with_the_callbacks_executed(self):
        with self.captureOnCommitCallbacks(using="pg", execute=True):  # the callbacks of "pg"'s commits
            with self.assertRaises(Rollback):
                with transaction.atomic(using="pg"):
                    get_bus().outbox(using="pg").shop.orders.order_placed.fire(order_id=3, item="x", quantity=1)
                    raise Rollback
            place(4, using="pg")
        self.assertEqual([m.kwargs["order_id"] for m in self.lightbus.fired(EVENT)], [4])
        self.assertEqual(shipments(), [4])
        self.assertEqual(outbox_events(using="pg"), [])

    def test_the_bus_is_restored_after_the_test(self):
        self.assertTrue(self.lightbus.active)
        self.doCleanups()  # what runs after the test
        self.assertFalse(self.lightbus.active)
        self.assertIsInstance(get_bus().transport_for("shop.orders"), RedisTransport)


class InMemoryTransactionTestCaseTests(InMemoryBusMixin, TransactionTestCase):
    lightbus_eager = False

    def setUp(self) -> None:
        super().setUp()
        received.clear()

    def test_committed_events_wait_for_drain(self):
        place(1)
        with transaction.atomic():
            fire_on_commit(EVENT, order_id=2, item="book", quantity=1)
        self.assertEqual(received, [])
        self.assertEqual(self.lightbus.drain(), 6)  # two events, three listeners each
        self.assertEqual([r["order_id"] for r in received], [1, 2])
        self.assertEqual(shipments(), [1, 2])
        self.assertEqual(outbox_events(), [])
