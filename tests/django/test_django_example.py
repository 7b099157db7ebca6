"""examples/django_project as real processes, on SQLite and on PostgreSQL: ``manage.py
migrate``, ``manage.py runserver``, ``manage.py lightbus_run``, HTTP requests, and the
effects checked in the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from django_processes import (  # noqa: F401 (fixtures)
    ManageProcess,
    WebProcess,
    manage,
    postgres_database,
    processes,
)
from runner_apps.harness import wait_until

STREAM = "shop.orders.*:stream"


class Shop:
    """The example project on one database: run its commands, read its tables."""

    def __init__(self, tmp_path: Path, redis_url: str, database: str, postgres_url: str = "") -> None:
        self.tmp_path = tmp_path
        self.database = database
        self.env = {"LIGHTBUS_REDIS_URL": redis_url, "SHOP_DEBUG": "0"}
        if database == "sqlite":
            self.env["SHOP_SQLITE_PATH"] = str(tmp_path / "shop.sqlite3")
        else:
            self.env["SHOP_DATABASE_URL"] = postgres_url
        self.postgres_url = postgres_url

    def query(self, sql: str) -> list[tuple]:
        if self.database == "sqlite":
            with sqlite3.connect(self.env["SHOP_SQLITE_PATH"]) as db:
                return db.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.postgres_url) as db:
            return db.execute(sql).fetchall()

    def migrate(self) -> None:
        result = manage("migrate", "-v0", env=self.env)
        assert result.returncode == 0, result.stdout + result.stderr

    def shipments(self) -> list[tuple]:
        return self.query("SELECT order_id, item, quantity FROM shipping_shipment ORDER BY order_id")

    def orders(self) -> list[int]:
        return [row[0] for row in self.query("SELECT id FROM orders_order ORDER BY id")]


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request, tmp_path, django_redis) -> Shop:
    if request.param == "sqlite":
        return Shop(tmp_path, django_redis.url, "sqlite")
    url = request.getfixturevalue("postgres_database")
    return Shop(tmp_path, django_redis.url, "postgresql", url)


def test_a_view_fires_and_another_app_handles_it(shop, processes, django_redis):
    shop.migrate()
    web = WebProcess(shop.tmp_path, env=shop.env)
    runner = ManageProcess(shop.tmp_path, "lightbus_run", env=shop.env, notify=True)
    processes += [web, runner]
    web.wait_serving()
    runner.wait_ready()

    placed = []
    for quantity in (1, 2, 3):
        status, body = web.request("POST", "/orders/", {"item": f"item-{quantity}", "quantity": quantity})
        assert status == 201, body
        placed.append(body["order_id"])
    status, body = web.request("POST", "/orders/", {"item": "refused", "quantity": 0})
    assert status == 400 and body == {"error": "quantity must be at least 1"}

    expected = [(order_id, f"item-{q}", q) for order_id, q in zip(placed, (1, 2, 3))]
    wait_until(lambda: shop.shipments() == expected, 30, what=f"shipments {expected}")
    assert shop.orders() == placed  # the refused order's row was rolled back...
    assert django_redis.client().xlen(STREAM) == 3  # ...and its event never published
    status, body = web.request("GET", "/shipments/")
    assert status == 200 and [s["order_id"] for s in body["shipments"]] == placed
    assert runner.stop() == 0, runner.output()
