"""The inbox on the Django ORM: listeners with ``inbox="<alias>"`` (``@listen`` or
``listen()`` on the project bus) handle each event once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

import lightbus_sync
from lightbus_sync.contrib.django import get_bus, listen
from runner_apps.harness import wait_until

STREAM = "shop.orders.*:stream"


def duplicate_entry(client, message) -> str:
    """The entry of ``message`` once more in its stream: the same event delivered twice."""
    (_, fields), = client.xrange(STREAM, message.stream_id, message.stream_id)
    return client.xadd(STREAM, fields).decode()


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
@pytest.mark.parametrize("alias", ["default", "pg"])
def test_an_inbox_listener_handles_each_event_once(alias, redis_client):
    from shipping.models import Shipment

    calls = []
    lock = threading.Lock()
    fail_first = {"order_id": 2}

    @listen("shop.orders.order_placed", listener_name=f"inbox_{alias}", inbox=alias, retry_backoff=(0.05, 0.1))
    def ship(event_message: lightbus_sync.EventMessage, order_id: int, item: str, quantity: int) -> None:
        with lock:
            calls.append(order_id)
        Shipment.objects.using(alias).create(order_id=order_id, item=item, quantity=quantity)
        if order_id == fail_first.get("order_id"):
            fail_first.clear()
            raise RuntimeError("fails once, after its write: rolled back with the inbox row")

    bus = get_bus()
    try:
        with bus.listening(listener_names=[f"inbox_{alias}"]) as runner:
            assert runner.wait_until_ready(10)
            messages = [bus.shop.orders.order_placed.fire(order_id=n, item="book", quantity=1) for n in (1, 2, 3)]
            for message in messages:
                duplicate_entry(redis_client, message)  # every event delivered twice
            wait_until(lambda: Shipment.objects.using(alias).count() == 3
                       and runner.status_line().count("in flight 0") == 1 and len(calls) >= 4, 30,
                       what="three shipments")
            wait_until(lambda: int(redis_client.xpending(STREAM, f"djtests-inbox_{alias}")["pending"]) == 0, 20,
                       what="every entry acked")
        assert sorted(Shipment.objects.using(alias).values_list("order_id", flat=True)) == [1, 2, 3]
        assert sorted(calls) == [1, 2, 2, 3]  # the failed run, retried; no duplicate ran
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT event_id FROM lightbus_inbox WHERE listener_group = %s", [f"djtests-inbox_{alias}"])
            assert sorted(row[0] for row in cursor.fetchall()) == sorted(m.id for m in messages)
    finally:
        bus.listeners._listeners.pop(f"inbox_{alias}")


def test_an_inbox_on_an_unknown_database_or_a_mismatched_handler_is_refused():
    bus = get_bus()
    with pytest.raises(lightbus_sync.InvalidListener, match="inbox='nope' names no database"):
        listen("shop.orders.order_placed", listener_name="bad_inbox", inbox="nope")(lambda **kw: None)
    with pytest.raises(lightbus_sync.InvalidListener, match="does not accept 'quantity'"):
        listen("shop.orders.order_placed", listener_name="bad_handler", inbox="default")(
            lambda order_id, item: None)
    assert {"bad_inbox", "bad_handler"}.isdisjoint(listener.name for listener in bus.listeners)


@pytest.mark.django_db(transaction=True)
def test_listen_on_the_bus_takes_an_inbox_too(redis_client):
    from shipping.models import Shipment

    bus = get_bus()

    def ship(order_id: int, item: str, quantity: int) -> None:
        Shipment.objects.create(order_id=order_id, item=item, quantity=quantity)

    listener = bus.shop.orders.order_placed.listen(ship, listener_name="bus_inbox", inbox="default")
    try:
        assert repr(listener.inbox) == "<DjangoInbox using='default'>" and not listener.wants_message
        with bus.listening(listener_names=["bus_inbox"]) as runner:
            assert runner.wait_until_ready(10)
            message = bus.shop.orders.order_placed.fire(order_id=5, item="book", quantity=1)
            duplicate = duplicate_entry(redis_client, message)

            def both_acked() -> bool:
                (group,) = redis_client.xinfo_groups(STREAM)
                last = group["last-delivered-id"]
                return (last.decode() if isinstance(last, bytes) else last) == duplicate and not int(group["pending"])

            wait_until(both_acked, 20, what="both entries delivered and acked")
        assert list(Shipment.objects.values_list("order_id", flat=True)) == [5]
    finally:
        bus.listeners._listeners.pop("bus_inbox")


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
@pytest.mark.parametrize("alias", ["default", "pg"])
def test_the_django_inbox_purges_by_the_shared_rule(alias):
    import time

    from lightbus_sync.contrib.django.inbox import DjangoInbox

    inbox = DjangoInbox(alias, retention=60)
    with connections[alias].cursor() as cursor:  # the inbox table is no model: no flush empties it
        cursor.execute("DELETE FROM lightbus_inbox WHERE listener_group IN ('g', 'other')")
    for event_id, stream_id in (("a", "100-0"), ("b", "200-0"), ("c", "300-0")):
        assert inbox.handle("g", event_id, "s", stream_id, lambda session: None)
    assert not inbox.handle("g", "a", "s", "100-0", lambda session: pytest.fail("handled twice"))
    inbox.handle("other", "a", "s2", "100-0", lambda session: None)
    now = time.time()
    assert inbox.purge("g", lambda stream, group: "999-0", now=now) == 0  # nothing older than 60 s
    floors = {("s", "g"): "200-0", ("s2", "other"): None}  # 200-0 still pending; other's group unknown
    assert inbox.purge("g", lambda stream, group: floors[(stream, group)], now=now + 120) == 1
    assert inbox.purge("other", lambda stream, group: floors[(stream, group)], now=now + 120) == 0
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT listener_group, event_id FROM lightbus_inbox WHERE listener_group IN ('g', 'other') "
                       "ORDER BY listener_group, event_id")
        assert cursor.fetchall() == [("g", "b"), ("g", "c"), ("other", "a")]


def test_an_inbox_retention_must_be_positive():
    bus = get_bus()
    with pytest.raises(lightbus_sync.InvalidListener, match=r"inbox='default': inbox retention must be > 0 seconds, got 0"):
        listen("shop.orders.order_placed", listener_name="bad_retention", inbox="default", inbox_retention=0)(
            lambda order_id, item, quantity: None)
    assert "bad_retention" not in {listener.name for listener in bus.listeners}
