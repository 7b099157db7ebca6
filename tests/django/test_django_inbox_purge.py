"""``manage.py lightbus_run`` purges the Django inbox as the runner purges the SQLAlchemy
one: rows past the retention whose entries the group can no longer be given go; a row
of an entry still pending (it may be redelivered) stays, and so do recent rows."""

from __future__ import annotations

import sqlite3
import time

from django_processes import ManageProcess, manage, processes  # noqa: F401 (fixture)
from runner_apps.harness import wait_until

STREAM = "shop.orders.*:stream"
GROUP = "shop-create_shipment"
OLD = time.time() - 8 * 86400  # past the default retention, 7 days


def fire(redis_url: str, order_id: int):
    import lightbus_sync
    from orders.bus import OrdersApi  # noqa: F401 (defines the API)

    bus = lightbus_sync.create(redis_url=redis_url, service_name="tests")
    try:
        return bus.shop.orders.order_placed.fire(order_id=order_id, item=f"item-{order_id}", quantity=1)
    finally:
        bus.close()


def test_lightbus_run_purges_inbox_rows_that_cannot_be_redelivered(tmp_path, processes, django_redis):
    database = tmp_path / "shop.sqlite3"
    env = {"SHOP_SQLITE_PATH": str(database), "LIGHTBUS_REDIS_URL": django_redis.url,
           "DJANGO_SETTINGS_MODULE": "purge_site"}
    migrated = manage("migrate", "-v0", env=env)
    assert migrated.returncode == 0, migrated.stderr

    def db(sql: str, *parameters) -> list[tuple]:
        with sqlite3.connect(database) as connection:
            return connection.execute(sql, parameters).fetchall()

    runner = ManageProcess(tmp_path, "lightbus_run", env=env, notify=True)
    processes.append(runner)
    runner.wait_ready()
    handled = [fire(django_redis.url, n) for n in (1, 2)]
    wait_until(lambda: len(db("SELECT * FROM shipping_shipment")) == 2, 20, what="two shipments")
    assert runner.stop() == 0, runner.output()
    client = django_redis.client()

    # Event 3 is delivered to another consumer of the group and not acked (its process
    # died after committing): pending, so it may come back; its inbox row is old.
    pending = fire(django_redis.url, 3)
    assert client.xreadgroup(GROUP, "elsewhere", {STREAM: ">"}, count=1)
    db("INSERT INTO lightbus_inbox (listener_group, event_id, stream, stream_id, handled_at) VALUES (?, ?, ?, ?, ?)",
       GROUP, pending.id, STREAM, pending.stream_id, OLD)
    db("UPDATE lightbus_inbox SET handled_at = ? WHERE event_id IN (?, ?)", OLD, handled[0].id, handled[1].id)
    assert len(db("SELECT * FROM lightbus_inbox WHERE handled_at = ?", OLD)) == 3

    runner = ManageProcess(tmp_path, "lightbus_run", env=env, notify=True)
    processes.append(runner)
    runner.wait_ready()
    recent = fire(django_redis.url, 4)  # its delivery takes the purge turn
    wait_until(lambda: len(db("SELECT * FROM lightbus_inbox")) == 2, 20, what="the purge")
    assert sorted(row[0] for row in db("SELECT event_id FROM lightbus_inbox")) == sorted([pending.id, recent.id])
    assert runner.stop() == 0, runner.output()
    assert f"purged 2 row(s) of {GROUP}" in runner.output()
    assert len(db("SELECT * FROM shipping_shipment")) == 3  # 1, 2 and 4: event 3 is the other consumer's
