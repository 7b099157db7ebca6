"""The app inside one Django process: the project's bus from the settings, bus modules
autodiscovered, ``@listen``, ``fire_on_commit`` with commits, rollbacks and Django's test
case (``captureOnCommitCallbacks``), on SQLite and PostgreSQL, and listeners using the ORM."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import TestCase, TransactionTestCase

import lightbus_sync
from lightbus_sync.contrib.django import fire_on_commit, get_bus
from runner_apps.harness import wait_until

STREAM = "shop.orders.*:stream"


def entries(redis_client) -> list[dict]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in redis_client.xrange(STREAM)]


def test_one_bus_per_project_made_from_the_settings(project_bus):
    import lightbus_sync.contrib.django as integration

    assert isinstance(project_bus, lightbus_sync.Bus)
    assert project_bus is get_bus() is integration.bus
    assert project_bus.service_name == "djtests" and project_bus.process_name == "djtests-1"
    assert project_bus.config.api("default").redis.acknowledgement_timeout == 2


def test_every_apps_bus_module_is_imported_and_its_listeners_registered(project_bus):
    import sys

    assert {"orders.bus", "shipping.bus", "djtest.bus"} <= set(sys.modules)
    assert "shop.orders" in [d.name for d in project_bus.local_apis()]
    listeners = {listener.name: listener for listener in project_bus.listeners}
    # @listen in shipping (before... and after the API's app) and djtest, and a direct listen()
    assert set(listeners) == {"create_shipment", "record_orders", "direct"}
    assert listeners["create_shipment"].group == "djtests-create_shipment"
    assert listeners["record_orders"].streams == (STREAM,)


def test_listen_after_start_up_registers_at_once(project_bus):
    from lightbus_sync.contrib.django import listen

    @listen("shop.orders.order_placed", listener_name="late_listener")
    def late(order_id: int, item: str, quantity: int) -> None: ...

    try:
        assert "late_listener" in {listener.name for listener in project_bus.listeners}
    finally:
        project_bus.listeners._listeners.pop("late_listener")


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
@pytest.mark.parametrize("alias", ["default", "pg"])
def test_fire_on_commit_fires_after_the_commit_and_never_on_rollback(alias, redis_client):
    with transaction.atomic(using=alias):
        fire_on_commit("shop.orders.order_placed", using=alias, order_id=1, item="book", quantity=2)
        assert entries(redis_client) == []  # not before the commit
    assert [e[":order_id"] for e in entries(redis_client)] == ["1"]

    with pytest.raises(RuntimeError):
        with transaction.atomic(using=alias):
            fire_on_commit("shop.orders.order_placed", using=alias, order_id=2, item="pen", quantity=1)
            raise RuntimeError("roll back")
    # a savepoint rolled back inside a committed transaction takes its fires with it
    with transaction.atomic(using=alias):
        fire_on_commit("shop.orders.order_placed", using=alias, order_id=3, item="ink", quantity=1)
        try:
            with transaction.atomic(using=alias):
                fire_on_commit("shop.orders.order_placed", using=alias, order_id=4, item="cup", quantity=1)
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
    assert [e[":order_id"] for e in entries(redis_client)] == ["1", "3"]


@pytest.mark.django_db(transaction=True)
def test_fire_on_commit_outside_a_transaction_fires_at_once(redis_client):
    fire_on_commit("shop.orders.order_placed", order_id=7, item="book", quantity=1)
    assert [e[":order_id"] for e in entries(redis_client)] == ["7"]


@pytest.mark.django_db(transaction=True)
def test_a_bad_call_raises_inside_the_transaction(redis_client):
    with pytest.raises(lightbus_sync.MissingParameter, match="quantity"):
        with transaction.atomic():
            fire_on_commit("shop.orders.order_placed", order_id=1, item="book")
    with pytest.raises(lightbus_sync.InvalidParameterValue):
        fire_on_commit("shop.orders.order_placed", order_id=object(), item="book", quantity=1)
    with pytest.raises(lightbus_sync.UnknownEvent):
        fire_on_commit("shop.orders.order_cancelled", order_id=1)
    assert entries(redis_client) == []


@pytest.mark.django_db(transaction=True)
def test_a_failed_write_at_commit_raises_to_the_committer(django_redis):
    from orders.models import Order

    django_redis.stop()
    bus = get_bus()
    client = bus.shop.orders.order_placed
    saved = client._fire_timeout
    client._fire_timeout = 0.5
    try:
        with pytest.raises(lightbus_sync.BusUnavailable):
            with transaction.atomic():
                Order.objects.create(item="book", quantity=1)
                fire_on_commit(client, order_id=1, item="book", quantity=1)
        assert Order.objects.count() == 1  # committed; the event is the one lost (the window)
    finally:
        client._fire_timeout = saved
        django_redis.start()


@pytest.mark.django_db
def test_pytest_django_captures_on_commit_callbacks(django_capture_on_commit_callbacks, redis_client):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            fire_on_commit("shop.orders.order_placed", order_id=5, item="book", quantity=1)
    assert len(callbacks) == 1
    assert [e[":order_id"] for e in entries(redis_client)] == ["5"]


class FireOnCommitTestCase(TestCase):
    """django.test.TestCase wraps each test in a transaction that never commits:
    ``captureOnCommitCallbacks`` runs the fires."""

    def test_capture_on_commit_callbacks_runs_the_fire(self):
        from orders.models import Order

        client = get_bus().transport_for("shop.orders").client
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            order = Order.objects.create(item="book", quantity=3)
            fire_on_commit("shop.orders.order_placed", order_id=order.pk, item="book", quantity=3)
        self.assertEqual(len(callbacks), 1)
        self.assertEqual(client.xlen(STREAM), 1)

    def test_without_capturing_nothing_is_fired(self):
        client = get_bus().transport_for("shop.orders").client
        fire_on_commit("shop.orders.order_placed", order_id=1, item="book", quantity=3)
        self.assertFalse(client.exists(STREAM))


class ListenersUseTheOrmTestCase(TransactionTestCase):
    """The shipping app's listener, run by the bus's runner threads, writes with the ORM."""

    databases = {"default"}

    def test_the_listener_creates_a_shipment_per_order(self):
        from orders.models import Order
        from shipping.models import Shipment

        bus = get_bus()
        with bus.listening(listener_names=["create_shipment"]) as runner:
            assert runner.wait_until_ready(10)
            for quantity in (1, 2, 3):
                with transaction.atomic():
                    order = Order.objects.create(item="book", quantity=quantity)
                    fire_on_commit("shop.orders.order_placed", order_id=order.pk, item="book",
                                   quantity=quantity)
            wait_until(lambda: Shipment.objects.count() == 3, 15, what="three shipments")
        self.assertEqual(sorted(Shipment.objects.values_list("quantity", flat=True)), [1, 2, 3])
