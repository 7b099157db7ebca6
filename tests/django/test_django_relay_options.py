"""The outbox relay's database URL, made from ``DATABASES[alias]``, carries its
``OPTIONS``: a real ``lightbus_run`` on a PostgreSQL alias whose ``options`` set a
``search_path`` (the outbox tables live only in that schema) and an ``application_name``
(seen in ``pg_stat_activity``); the password never shows."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from django.db import connections

from django_processes import ManageProcess, manage, postgres_database, processes  # noqa: F401 (fixtures)
from lightbus_sync.contrib.django.outbox import database_url
from lightbus_sync.errors import ConfigurationError
from lightbus_sync.outbox.urls import relay_engine, safe_url
from runner_apps.harness import wait_until

PASSWORD = "pw-" + uuid.uuid4().hex


@pytest.fixture
def options_alias():
    """Set ``OPTIONS`` on a database alias for the test; restored after."""
    saved: dict[str, object] = {}

    def set_options(alias: str, options: object) -> None:
        settings = connections[alias].settings_dict
        saved.setdefault(alias, settings.get("OPTIONS"))
        settings["OPTIONS"] = options

    yield set_options
    for alias, options in saved.items():
        connections[alias].settings_dict["OPTIONS"] = options


@pytest.mark.django_db(databases=["pg"])
def test_the_relays_postgresql_connection_takes_the_aliases_options(options_alias):
    options_alias("pg", {"application_name": "relay options test", "connect_timeout": 5,
                         "options": "-c search_path=pg_catalog,public", "isolation_level": 1})
    url = database_url("pg")
    assert "isolation_level" not in url  # Django's own key, not a connection parameter
    engine = relay_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.exec_driver_sql(
                "SELECT current_setting('application_name'), current_setting('search_path'), "
                "current_setting('idle_in_transaction_session_timeout')").one()
    finally:
        engine.dispose()
    # The relay's own idle timeout is added to the alias's options, not instead of them.
    assert tuple(row) == ("relay options test", "pg_catalog,public", "1min")


@pytest.mark.django_db(databases=["pg"])
def test_secrets_in_the_options_are_hidden_from_the_urls_display(options_alias):
    options_alias("pg", {"sslpassword": PASSWORD, "password": PASSWORD, "sslmode": "prefer"})
    url = database_url("pg")
    assert PASSWORD in url  # the relay's connection gets them...
    shown = safe_url(url)
    assert PASSWORD not in shown and "sslpassword=***" in shown and "sslmode=prefer" in shown  # ...logs do not


@pytest.mark.django_db
def test_the_relays_sqlite_connection_takes_timeout_and_refuses_what_it_cannot_take(options_alias):
    options_alias("default", {"timeout": 7, "init_command": "PRAGMA foreign_keys=ON", "transaction_mode": "IMMEDIATE"})
    url = database_url("default")
    assert url.endswith("?timeout=7"), url  # Django's own keys are left to Django
    options_alias("default", {"uri": True})
    with pytest.raises(ConfigurationError, match=r"""DATABASES\['default'\]\["OPTIONS"\]\['uri'\]: .*takes """
                                                 r"cached_statements, detect_types, timeout"):
        database_url("default")
    options_alias("default", {"timeout": [1]})
    with pytest.raises(ConfigurationError, match=r"\['timeout'\]: .* must be a string or a number; got list"):
        database_url("default")
    options_alias("default", "timeout=1")
    with pytest.raises(ConfigurationError, match=r"""DATABASES\['default'\]\["OPTIONS"\] must be a dict, got str"""):
        database_url("default")


@pytest.fixture
def pg_role():
    """A PostgreSQL login role with a password; dropped after (request it before the
    database it owns objects in, which is then dropped first)."""
    from django_processes import POSTGRES_URL

    role = f"lb_opt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    yield role
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_lightbus_run_relays_through_the_options_of_a_postgresql_alias(pg_role, postgres_database, processes,
                                                                     tmp_path, django_redis):
    role, schema, app_name = pg_role, "shop_schema", f"shop-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    url = postgres_database.replace("postgres@", f"{role}:{PASSWORD}@", 1)
    env = {
        "DJANGO_SETTINGS_MODULE": "options_site", "SHOP_DATABASE_URL": url,
        "LIGHTBUS_REDIS_URL": django_redis.url,
        "OPTIONS_SITE_DB_OPTIONS": json.dumps({"options": f"-c search_path={schema}",
                                               "application_name": app_name, "connect_timeout": 10}),
    }
    migrated = manage("migrate", "-v0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    runner = ManageProcess(tmp_path, "lightbus_run", "--log-level", "DEBUG", env=env, notify=True)
    processes.append(runner)
    runner.wait_ready()
    placed = manage("shell", "-c", "\n".join([
        "from django.db import transaction",
        "from lightbus_sync.contrib.django import bus",
        "from orders.models import Order",
        "with transaction.atomic():",
        "    order = Order.objects.create(item='book', quantity=2)",
        "    bus.outbox().shop.orders.order_placed.fire(order_id=order.pk, item='book', quantity=2)",
    ]), env=env)
    assert placed.returncode == 0, placed.stderr

    def query(sql: str) -> list[tuple]:
        with psycopg.connect(postgres_database) as db:
            return db.execute(sql).fetchall()

    # The tables exist only in the schema the options name: the relay found them there.
    wait_until(lambda: query(f"SELECT item FROM {schema}.shipping_shipment") == [("book",)], 30,
               what="the shipment of the relayed event")
    assert query(f"SELECT count(*) FROM {schema}.lightbus_outbox") == [(0,)]
    assert query("SELECT to_regclass('public.lightbus_outbox')") == [(None,)]
    assert query(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}' "
                 f"AND application_name = '{app_name}'")[0][0] >= 1
    status = manage("lightbus", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "outbox" in status.stdout, status.stdout
    assert runner.stop() == 0, runner.output()
    for text in (runner.output(), status.stdout, status.stderr, migrated.stdout, placed.stdout, placed.stderr):
        assert PASSWORD not in text
