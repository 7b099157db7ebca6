"""Fault scenarios with the example shop as real processes on PostgreSQL (``runserver``,
``lightbus_run`` relaying the outbox, listeners with an inbox), the effects counted in
the database and in Redis. The table is printed at the end of the run.

- the database's connections killed (``pg_terminate_backend``) while ``lightbus_run``
  handles events: only the handlers in flight fail and are retried; nothing is lost or
  done twice;
- the web process SIGKILLed right after its commit: the outbox still delivers the event;
- the same with ``fire_on_commit``, killed between the commit and the write to Redis:
  its documented loss window (the event is lost);
- rolled-back requests: nothing of theirs is published.
"""

from __future__ import annotations

import re
import time
import urllib.error

import pytest

from django_processes import ManageProcess, WebProcess, manage, postgres_database, processes  # noqa: F401
from runner_apps.harness import wait_until

STREAM = "shop.orders.*:stream"
SETTINGS = "fault_site.settings"
FAULT_ROWS: list[dict] = []


class Shop:
    def __init__(self, tmp_path, redis, postgres_url: str, processes: list) -> None:
        self.tmp_path = tmp_path
        self.redis = redis.client()
        self.postgres_url = postgres_url
        self.processes = processes
        self.env = {"LIGHTBUS_REDIS_URL": redis.url, "SHOP_DATABASE_URL": postgres_url,
                    "DJANGO_SETTINGS_MODULE": SETTINGS, "SHOP_DEBUG": "0"}
        result = manage("migrate", "-v0", env=self.env)
        assert result.returncode == 0, result.stderr

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.postgres_url, autocommit=True) as db:
            return db.execute(sql, params).fetchall()

    def web(self) -> WebProcess:
        web = WebProcess(self.tmp_path, env=self.env)
        self.processes.append(web)
        return web.wait_serving()

    def runner(self, *args: str) -> ManageProcess:
        runner = ManageProcess(self.tmp_path, "lightbus_run", "--threads", "4", *args, env=self.env, notify=True)
        self.processes.append(runner)
        return runner.wait_ready()

    def orders(self) -> list[int]:
        return [r[0] for r in self.query("SELECT id FROM orders_order ORDER BY id")]

    def effects(self, table: str) -> list[int]:
        return [r[0] for r in self.query(f"SELECT order_id FROM {table} ORDER BY order_id")]

    def published(self) -> list[int]:
        import json

        return [json.loads(fields[b":order_id"]) for _, fields in self.redis.xrange(STREAM)]

    def row(self, scenario: str, requests: int, rolled_back: int, retried: int) -> dict:
        committed = self.orders()
        published = self.published()
        handled = self.effects("shipping_shipment")
        row = {
            "scenario": scenario, "requests": requests, "committed": len(committed), "rolled back": rolled_back,
            "published": len(published), "handled": len(set(handled)),
            "duplicate effects": len(handled) - len(set(handled)),
            "lost": len(set(committed) - set(handled)), "phantom": len(set(handled) - set(committed)),
            "handler retries": retried,
        }
        FAULT_ROWS.append(row)
        return row


@pytest.fixture
def shop(tmp_path, django_redis, postgres_database, processes) -> Shop:
    return Shop(tmp_path, django_redis, postgres_database, processes)


def terminate_backends(shop: Shop) -> int:
    """pg_terminate_backend on every connection to the shop's database but this one."""
    name = shop.postgres_url.rsplit("/", 1)[1]
    rows = shop.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", name)
    return len(rows)


def test_database_connections_killed_while_lightbus_run_handles_events(shop):
    web = shop.web()

    def place(count: int) -> None:
        for _ in range(count):
            status, body = web.request("POST", "/orders/", {"item": "book", "quantity": 1})
            assert status == 201, body

    runner = shop.runner()
    place(20)
    kills = 3
    for kill in range(kills):
        wait_until(lambda: len(shop.effects("djfaults_audit")) >= 3 + kill * 4, 30, what="handling under way")
        terminate_backends(shop)
        # New events after the kill reach the shared worker threads: a thread that kept its
        # (now dead) connection from before would fail on them.
        place(5)
        time.sleep(0.3)
    committed = shop.orders()
    assert len(committed) == 20 + kills * 5
    wait_until(lambda: shop.effects("djfaults_audit") == committed and shop.effects("shipping_shipment") == committed,
               60, what="every order audited and shipped once")
    assert runner.stop() == 0, runner.output()
    failures = re.findall(r"handler of listener '(\w+)' failed for shop\.orders\.order_placed", runner.output())
    row = shop.row("connections killed 3x during handling (PostgreSQL)", len(committed), 0, len(failures))
    assert row["lost"] == row["duplicate effects"] == row["phantom"] == 0
    assert shop.effects("djfaults_audit") == committed  # the slow listener: once each too
    assert failures, "no handler was in flight when the connections were killed"
    # Only handlers in flight fail: the slow one (in flight nearly always) and at most one
    # quick one per kill; the idle threads hold no connection, so lose nothing.
    assert len(failures) <= kills * 2, failures
    assert "dead-lettered" not in runner.output()


def request_and_die(shop: Shop, path: str, body: dict, headers: dict | None = None) -> None:
    """A request to a fresh web process that SIGKILLs itself after its commit."""
    web = shop.web()
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        web.request("POST", path, body, headers=headers)
    assert web.proc.wait(10) == -9


def test_web_process_killed_right_after_commit_still_delivers_through_the_outbox(shop):
    runner = shop.runner()
    requests = 5
    for n in range(requests):
        request_and_die(shop, "/orders/", {"item": f"killed-{n}", "quantity": 1}, {"X-Fault": "kill-after-commit"})
    committed = shop.orders()
    assert len(committed) == requests  # each request committed before its process died
    wait_until(lambda: shop.effects("shipping_shipment") == committed, 30, what="every committed order shipped")
    assert runner.stop() == 0
    row = shop.row("web SIGKILLed right after commit (outbox)", requests, 0, 0)
    assert row["published"] == requests and row["lost"] == 0 and row["duplicate effects"] == 0


def test_fire_on_commit_loses_the_event_when_killed_between_commit_and_fire(shop):
    runner = shop.runner()
    requests = 3
    for n in range(requests):
        request_and_die(shop, "/fault/fire-on-commit-then-die/", {"item": f"lost-{n}", "quantity": 1})
    lost = shop.orders()
    # One order placed normally afterwards, on the same stream: once it is shipped, any
    # event of the killed requests that had reached Redis would have been handled too.
    status, body = shop.web().request("POST", "/orders/", {"item": "after", "quantity": 1})
    assert status == 201, body
    wait_until(lambda: shop.effects("shipping_shipment") == [body["order_id"]], 30, what="the later order shipped")
    assert runner.stop() == 0
    row = shop.row("web SIGKILLed between commit and fire (fire_on_commit)", requests + 1, 0, 0)
    # fire_on_commit's documented loss window: committed, never published.
    assert len(lost) == requests and row["published"] == 1 and row["lost"] == requests


def test_rolled_back_requests_publish_nothing(shop):
    web = shop.web()
    runner = shop.runner()
    for n in range(10):
        status, _ = web.request("POST", "/orders/", {"item": f"item-{n}", "quantity": n % 2})
        assert status == (201 if n % 2 else 400)
    committed = shop.orders()
    wait_until(lambda: shop.effects("shipping_shipment") == committed, 30, what="the committed orders shipped")
    assert runner.stop() == 0
    row = shop.row("requests rolled back (half of them)", 10, 5, 0)
    assert row["committed"] == 5 and row["published"] == 5 and row["lost"] == 0 and row["phantom"] == 0
    assert sorted(shop.published()) == committed


def fault_table() -> str:
    if not FAULT_ROWS:
        return ""
    columns = list(FAULT_ROWS[0])
    widths = [max(len(c), *(len(str(r[c])) for r in FAULT_ROWS)) for c in columns]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)) for r in FAULT_ROWS]
    return "\n".join(lines)
