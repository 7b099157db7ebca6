"""``manage.py lightbus_run`` and ``manage.py lightbus`` as real processes in the example
project: the options of ``lightbus-sync run`` (systemd notify included), exit statuses,
the configuring options applied before Django creates the bus, the ops commands."""

from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command

from django_processes import ManageProcess, manage, processes  # noqa: F401 (fixture)
from runner_apps.harness import wait_until

STREAM = "shop.orders.*:stream"


@pytest.fixture
def shop_env(tmp_path, django_redis):
    """The example project on a fresh SQLite file, migrated, and the suite's Redis."""
    env = {"SHOP_SQLITE_PATH": str(tmp_path / "shop.sqlite3"), "LIGHTBUS_REDIS_URL": django_redis.url}
    result = manage("migrate", "-v0", env=env)
    assert result.returncode == 0, result.stderr
    return env


def shipments(env) -> list[str]:
    import sqlite3

    with sqlite3.connect(env["SHOP_SQLITE_PATH"]) as db:
        return [row[0] for row in db.execute("SELECT item FROM shipping_shipment ORDER BY order_id")]


def fire(redis_url: str, *order_ids: int) -> None:
    import lightbus_sync
    from orders.bus import OrdersApi  # noqa: F401 (defines the API)

    bus = lightbus_sync.create(redis_url=redis_url, service_name="tests")
    try:
        for order_id in order_ids:
            bus.shop.orders.order_placed.fire(order_id=order_id, item=f"item-{order_id}", quantity=1)
    finally:
        bus.close()


def test_lightbus_run_handles_events_with_the_orm_and_speaks_systemd(tmp_path, shop_env, processes, django_redis):
    runner = ManageProcess(tmp_path, "lightbus_run", "--threads", "2", env={**shop_env, "WATCHDOG_USEC": "500000"},
                           notify=True)
    processes.append(runner)
    runner.wait_ready()
    client = django_redis.client()
    assert [g["name"] for g in client.xinfo_groups(STREAM)] == [b"shop-create_shipment"]
    fire(django_redis.url, 1, 2, 3)
    wait_until(lambda: len(shipments(shop_env)) == 3, 20, what="three shipments")
    wait_until(lambda: runner.notify.lines().count("WATCHDOG=1") >= 2, 10, what="watchdog pings")
    assert runner.stop() == 0
    lines = runner.notify.lines()
    assert lines.count("READY=1") == 1 and "STOPPING=1" in lines
    assert any(line.startswith("STATUS=") for line in lines)
    assert "2 thread(s)" in runner.output()


def test_configuring_options_apply_before_django_creates_the_bus(tmp_path, shop_env, processes, django_redis):
    env = {k: v for k, v in shop_env.items() if k != "LIGHTBUS_REDIS_URL"}  # the settings' 6379 would be wrong
    runner = ManageProcess(tmp_path, "lightbus_run", "--redis-url", django_redis.url, "--service-name", "shop-eu",
                           "--listener", "create_shipment", env=env, notify=True)
    processes.append(runner)
    runner.wait_ready()
    assert [g["name"] for g in django_redis.client().xinfo_groups(STREAM)] == [b"shop-eu-create_shipment"]
    fire(django_redis.url, 4)
    wait_until(lambda: shipments(shop_env) == ["item-4"], 20, what="the shipment")
    assert runner.stop() == 0


def test_an_option_given_too_late_to_configure_the_bus_is_refused():
    with pytest.raises(CommandError, match=r"--redis-url applies only on manage.py's own command line.*LIGHTBUS_REDIS_URL"):
        call_command("lightbus_run", redis_url="redis://127.0.0.1:6399/0")


def test_bad_configuration_exits_2_in_one_line(shop_env, tmp_path):
    result = manage("lightbus_run", "--redis-url", "http://nowhere", env=shop_env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("manage.py lightbus_run: settings.LIGHTBUS_SYNC: config error(s)")
    assert "LIGHTBUS_SYNC.apis.default.event_transport.redis.url" in result.stderr
    assert "Traceback" not in result.stderr
    result = manage("lightbus_run", "--threads", "many", env=shop_env)
    assert result.returncode == 2 and "--threads" in result.stderr and "invalid int value" in result.stderr
    result = manage("lightbus_run", "--listener", "no_such_listener", env=shop_env)
    assert result.returncode == 2 and "no_such_listener" in result.stderr, result.stderr


def test_lightbus_ops_commands_work_on_the_projects_bus(shop_env, django_redis, tmp_path, processes):
    runner = ManageProcess(tmp_path, "lightbus_run", env=shop_env, notify=True)
    processes.append(runner)
    runner.wait_ready()
    fire(django_redis.url, 1, 2)
    wait_until(lambda: len(shipments(shop_env)) == 2, 20, what="two shipments")
    assert runner.stop() == 0

    status = manage("lightbus", "status", env=shop_env)
    assert status.returncode == 0, status.stderr
    assert STREAM in status.stdout and "shop-create_shipment" in status.stdout
    check = manage("lightbus", "status", "--check", "--max-lag", "0", env=shop_env)
    assert check.returncode == 0, check.stdout + check.stderr

    shown = manage("lightbus", "inspect", "shop.orders.order_placed", "--json", env=shop_env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r'"order_id": 2', shown.stdout)

    dead = manage("lightbus", "dead-letters", "list", env=shop_env)
    assert dead.returncode == 0, dead.stderr
    unknown = manage("lightbus", "nonsense", env=shop_env)
    assert unknown.returncode != 0 and "invalid choice" in unknown.stderr


def test_ops_commands_exit_4_when_redis_is_unreachable(shop_env):
    env = {**shop_env, "LIGHTBUS_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = manage("lightbus", "status", env=env)
    assert result.returncode == 4 and "Redis unavailable" in result.stderr, result.stderr


def test_lightbus_dumpschema_writes_the_projects_schemas(shop_env, tmp_path):
    import json

    dumped = manage("lightbus", "dumpschema", env=shop_env)
    assert dumped.returncode == 0, dumped.stderr
    schemas = json.loads(dumped.stdout)
    assert set(schemas) == {"shop.orders"}  # the APIs of the installed apps' bus modules
    assert set(schemas["shop.orders"]["events"]) == {"order_placed"}
    out = tmp_path / "schemas"
    written = manage("lightbus", "dumpschema", "--out", f"{out}/", env=shop_env)
    assert written.returncode == 0, written.stderr
    assert json.loads((out / "shop.orders.json").read_text()) == {"shop.orders": schemas["shop.orders"]}
    unreachable = manage("lightbus", "dumpschema", env={**shop_env, "LIGHTBUS_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert unreachable.returncode == 4 and "Redis unavailable" in unreachable.stderr, unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    refused = manage("lightbus", "dumpschema", "--bus", "shop.bus", env=shop_env)
    assert refused.returncode != 0 and "unrecognized arguments: --bus" in refused.stderr, refused.stderr


def test_lightbus_dashboard_serves_the_projects_streams(shop_env, tmp_path, processes, django_redis):
    import urllib.request

    from django_processes import free_port

    fire(django_redis.url, 1)
    port = free_port()
    dashboard = ManageProcess(tmp_path, "lightbus", "dashboard", "--port", str(port), env=shop_env)
    processes.append(dashboard)

    def page() -> str:
        assert dashboard.proc.poll() is None, dashboard.output()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                return response.read().decode()
        except OSError:
            return ""

    wait_until(lambda: STREAM in page(), 30, what="the dashboard listing the orders stream")
    assert "read-only" in dashboard.output()
    assert dashboard.stop() == 0, dashboard.output()
    bad = manage("lightbus", "dashboard", "--sample-interval", "0", env=shop_env)
    assert bad.returncode == 2 and "--sample-interval: expected seconds > 0" in bad.stderr, bad.stderr


def test_lightbus_outbox_relay_publishes_committed_rows(shop_env, tmp_path, processes, django_redis):
    placed = manage("shell", "-c", "\n".join([
        "from django.db import transaction",
        "from lightbus_sync.contrib.django import bus",
        "with transaction.atomic():",
        "    bus.outbox().shop.orders.order_placed.fire(order_id=7, item='lamp', quantity=1)",
    ]), env=shop_env)
    assert placed.returncode == 0, placed.stderr
    client = django_redis.client()
    assert not client.exists(STREAM)  # committed, not relayed yet
    relay = ManageProcess(tmp_path, "lightbus", "outbox", "relay", env=shop_env)
    processes.append(relay)
    wait_until(lambda: client.exists(STREAM) and client.xlen(STREAM) == 1, 30, what="the relayed entry")
    wait_until(lambda: outbox_backlog(shop_env) == 0, 10, what="the outbox row deleted")
    assert relay.stop() == 0, relay.output()
    assert "relaying the outbox" in relay.output()
    bad = manage("lightbus", "outbox", "relay", "--db", "not-a-url", env=shop_env)
    assert bad.returncode == 2 and "expected a SQLAlchemy database URL" in bad.stderr, bad.stderr
    unset = manage("lightbus", "outbox", "relay", env={**shop_env, "DJANGO_SETTINGS_MODULE": "no_outbox_site"})
    assert unset.returncode == 2 and "set settings.LIGHTBUS_SYNC_OUTBOX to a database alias" in unset.stderr, \
        unset.stderr
    no_init = manage("lightbus", "outbox", "init", env=shop_env)
    assert no_init.returncode != 0 and "invalid choice: 'init'" in no_init.stderr, no_init.stderr


def outbox_backlog(env) -> int:
    import sqlite3

    with sqlite3.connect(env["SHOP_SQLITE_PATH"]) as db:
        return db.execute("SELECT count(*) FROM lightbus_outbox").fetchone()[0]
