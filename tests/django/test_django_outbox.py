"""The outbox on the Django ORM, in one process: ``bus.outbox()`` inside
``transaction.atomic(using=...)`` on SQLite and PostgreSQL, the relay publishing what
committed, the tables in the SQLAlchemy outbox's layout, ``outbox_events()`` in tests."""

from __future__ import annotations

import pytest
from django.db import connections, transaction
from django.test import TestCase

import lightbus_sync
from lightbus_sync.contrib.django import get_bus
from lightbus_sync.contrib.django.models import OutboxEntry
from lightbus_sync.contrib.django.outbox import database_url
from lightbus_sync.contrib.django.testing import outbox_events
from lightbus_sync.errors import ConfigurationError
from lightbus_sync.outbox import OutboxTransactionError
from runner_apps.harness import wait_until

STREAM = "shop.orders.*:stream"


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
@pytest.mark.parametrize("alias", ["default", "pg"])
def test_outbox_writes_in_the_transaction_and_rolls_back_with_it(alias, redis_client):
    from orders.models import Order

    bus = get_bus()
    with transaction.atomic(using=alias):
        order = Order.objects.using(alias).create(item="book", quantity=2)
        message = bus.outbox(using=alias).shop.orders.order_placed.fire(order_id=order.pk, item="book", quantity=2)
        assert message.stream_id is None and message.stream == STREAM
    with pytest.raises(RuntimeError):
        with transaction.atomic(using=alias):
            bus.outbox(using=alias).shop.orders.order_placed.fire_many(
                [{"order_id": 8, "item": "x", "quantity": 1}, {"order_id": 9, "item": "y", "quantity": 1}])
            raise RuntimeError("roll back")
    events = outbox_events(alias)
    assert [(e.id, e.kwargs["order_id"]) for e in events] == [(message.id, order.pk)]
    assert redis_client.exists(STREAM) == 0  # nothing reaches Redis from the transaction
    other = "pg" if alias == "default" else "default"
    assert outbox_events(other) == []


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
def test_outbox_outside_a_transaction_or_with_a_bad_call_writes_nothing():
    bus = get_bus()
    with pytest.raises(OutboxTransactionError, match=r"outside a transaction.*transaction.atomic\(using='pg'\)"):
        bus.outbox(using="pg").shop.orders.order_placed.fire(order_id=1, item="book", quantity=1)
    with pytest.raises(lightbus_sync.MissingParameter):
        with transaction.atomic():
            bus.outbox().shop.orders.order_placed.fire(order_id=1, item="book")
    with pytest.raises(TypeError, match="not both"):
        bus.outbox(object(), using="pg")
    assert outbox_events("default") == outbox_events("pg") == []


@pytest.mark.django_db(transaction=True, databases=["pg"])
def test_the_relay_publishes_committed_rows_from_the_django_database(redis_client):
    bus = get_bus()
    with transaction.atomic(using="pg"):
        fired = [bus.outbox(using="pg").shop.orders.order_placed.fire(order_id=n, item="book", quantity=1)
                 for n in range(5)]
    relay = bus.start_outbox_relay(database_url("pg"), poll_interval=0.1)
    try:
        wait_until(lambda: redis_client.xlen(STREAM) == 5, 20, what="five relayed entries")
        wait_until(lambda: not OutboxEntry.objects.using("pg").exists(), 10, what="the relayed rows deleted")
    finally:
        relay.stop()
        relay.engine.dispose()
    relayed = [fields[b"id"].decode() for _, fields in redis_client.xrange(STREAM)]
    assert relayed == [m.id for m in fired]  # event ids kept, in commit order


@pytest.mark.django_db(databases=["default", "memory"])
def test_a_url_for_the_relay_names_the_database_and_in_memory_sqlite_is_refused():
    assert database_url("default") == f"sqlite:///{connections['default'].settings_dict['NAME']}"
    assert database_url("pg").startswith("postgresql+psycopg://postgres@127.0.0.1:5432/lightbus_djtest_")
    with pytest.raises(ConfigurationError, match="in-memory SQLite database"):
        database_url("memory")


def test_a_url_for_the_relay_keeps_every_part_of_the_postgresql_settings():
    import sqlalchemy as sa

    connection = connections["pg"]
    saved = dict(connection.settings_dict)
    try:
        connection.settings_dict.update(USER="app user", PASSWORD="p@ss:w/rd", HOST="db.internal", PORT="6432",
                                        NAME="shop")
        url = sa.engine.make_url(database_url("pg"))
        assert (url.username, url.password, url.host, url.port, url.database) == (
            "app user", "p@ss:w/rd", "db.internal", 6432, "shop")
        connection.settings_dict.update(HOST="/var/run/postgresql", PASSWORD="")
        url = sa.engine.make_url(database_url("pg"))
        assert url.host is None and url.query == {"host": "/var/run/postgresql"} and url.password is None
    finally:
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True, databases=["pg"])
def test_the_migrated_tables_have_the_layout_of_the_sqlalchemy_outbox():
    import sqlalchemy as sa

    from lightbus_sync.outbox.tables import metadata

    engine = sa.create_engine(database_url("pg"))
    try:
        inspector = sa.inspect(engine)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c for c in inspector.get_columns(table.name)}
            assert set(columns) == {c.name for c in table.columns}, table.name
            for column in table.columns:
                found = columns[column.name]
                assert found["nullable"] == column.nullable, (table.name, column.name)
                assert found["type"]._type_affinity is column.type._type_affinity or (
                    isinstance(found["type"], sa.Float) and isinstance(column.type, sa.Float)
                ), (table.name, column.name, found["type"], column.type)
            assert inspector.get_pk_constraint(table.name)["constrained_columns"] == [
                c.name for c in table.primary_key.columns]
            indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table.name)}
            for index in table.indexes:
                assert indexes.get(index.name) == [c.name for c in index.columns], (table.name, index.name)
    finally:
        engine.dispose()


class OutboxInTestCase(TestCase):
    """django.test.TestCase never commits: outbox_events() shows what a view wrote."""

    databases = {"default", "pg"}

    def test_outbox_events_of_a_request(self):
        response = self.client.post("/orders/", {"item": "book", "quantity": 2}, content_type="application/json")
        self.assertEqual(response.status_code, 201)
        (event,) = outbox_events(event="shop.orders.order_placed")
        self.assertEqual(event.kwargs, {"order_id": response.json()["order_id"], "item": "book", "quantity": 2})
        refused = self.client.post("/orders/", {"item": "pen", "quantity": 0}, content_type="application/json")
        self.assertEqual(refused.status_code, 400)
        self.assertEqual(len(outbox_events()), 1)
