"""`lightbus-sync outbox init | ddl | relay`, the relay inside `lightbus-sync run`, the
backlog in `status` and in the metrics, and the `bus.outbox` config keys: real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import lightbus_sync
from lightbus_sync.errors import ConfigurationError
from lightbus_sync.outbox import create_tables
from outbox_apps.shop import ShopApi  # noqa: F401  (defines the API here too)

APPS_DIR = Path(__file__).resolve().parent / "outbox_apps"
REPO_ROOT = Path(__file__).resolve().parent.parent
STREAM = "shop.*:stream"


def cli_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)]), PYTHONUNBUFFERED="1", **extra)
    return env


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightbus_sync.cli", *args], capture_output=True, text=True,
                          env=cli_env(**env), timeout=60)


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def shop_bus(redis_url):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="shop-app")
    yield bus
    bus.close()


def test_init_creates_the_tables_idempotently(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    for _ in range(2):
        result = cli("outbox", "init", "--db", url)
        assert result.returncode == 0, result.stderr
        assert "outbox tables ready" in result.stdout
    names = sa.inspect(sa.create_engine(url)).get_table_names()
    assert {"lightbus_outbox", "lightbus_inbox", "lightbus_outbox_lease"} <= set(names)


def test_init_on_postgresql_creates_the_notify_trigger(postgres_url):
    result = cli("outbox", "init", "--db", postgres_url)
    assert result.returncode == 0, result.stderr
    with sa.create_engine(postgres_url).connect() as connection:
        triggers = connection.execute(sa.text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'lightbus_outbox'::regclass")).scalars().all()
    assert triggers == ["lightbus_outbox_notify"]


def test_init_errors_are_clear_and_hide_the_password():
    result = cli("outbox", "init", "--db", "not a url")
    assert result.returncode == 2
    assert "expected a SQLAlchemy database URL" in result.stderr
    result = cli("outbox", "init", "--db", "postgresql+psycopg://app:s3cret@127.0.0.1:1/shop")
    assert result.returncode == 2
    assert "cannot create the tables in postgresql+psycopg://app:***@127.0.0.1:1/shop" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    result = cli("outbox", "init")
    assert result.returncode == 2 and "bus.outbox.url" in result.stderr


def test_ddl_prints_what_init_creates():
    result = cli("outbox", "ddl", "--dialect", "postgresql")
    assert result.returncode == 0
    assert "CREATE TABLE lightbus_outbox" in result.stdout
    assert "CREATE INDEX lightbus_outbox_stream_id ON lightbus_outbox (stream, id)" in result.stdout
    assert "CREATE TRIGGER lightbus_outbox_notify" in result.stdout
    result = cli("outbox", "ddl", "--dialect", "nosuchdb")
    assert result.returncode == 2 and "nosuchdb" in result.stderr


def test_outbox_relay_process_publishes_and_stops_on_sigterm(database_url, redis_url, redis_client, shop_bus):
    engine = sa.create_engine(database_url)
    create_tables(engine)
    relay = subprocess.Popen([sys.executable, "-m", "lightbus_sync.cli", "outbox", "relay", "--db", database_url,
                              "--redis-url", redis_url], env=cli_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        with engine.begin() as connection:
            fired = shop_bus.outbox(connection).shop.order_placed.fire_many(
                [{"order_id": i, "amount": i} for i in range(10)])
        assert wait_for(lambda: redis_client.xlen(STREAM) == 10)
        ids = [fields[b"id"].decode() for _, fields in redis_client.xrange(STREAM)]
        assert ids == [m.id for m in fired]
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(20) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
        engine.dispose()


def test_run_relays_the_configured_outbox(tmp_path, redis_url, redis_client, shop_bus):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    create_tables(engine)
    handled = tmp_path / "handled.jsonl"
    run = subprocess.Popen(
        [sys.executable, "-m", "lightbus_sync.cli", "run", "--bus", "shop_bus", "--redis-url", redis_url],
        env=cli_env(LIGHTBUS_OUTBOX_URL=url, SHOP_HANDLED=str(handled)), cwd=str(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: redis_client.exists(STREAM))  # the listener's group exists
        with engine.begin() as connection:
            message = shop_bus.outbox(connection).shop.order_placed.fire(order_id=7, amount=1)
        assert wait_for(lambda: handled.exists() and handled.read_text().strip())
        assert json.loads(handled.read_text()) == {"id": message.id, "order_id": 7}
        run.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0
        assert "relaying the outbox of <OutboxRelay sqlite" in run.stdout.read()
    finally:
        if run.poll() is None:
            run.kill()
        engine.dispose()


def test_status_shows_the_backlog(tmp_path, redis_url, shop_bus):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    create_tables(engine)
    result = cli("status", "--redis-url", redis_url, LIGHTBUS_OUTBOX_URL=url)
    assert result.returncode == 0, result.stderr
    assert f"outbox {url}: empty" in result.stdout
    with engine.begin() as connection:
        shop_bus.outbox(connection).shop.order_placed.fire_many([{"order_id": i, "amount": i} for i in range(4)])
    result = cli("status", "--redis-url", redis_url, LIGHTBUS_OUTBOX_URL=url)
    assert "4 row(s) waiting, the oldest for" in result.stdout
    result = cli("status", "--json", "--redis-url", redis_url, LIGHTBUS_OUTBOX_URL=url)
    outbox = json.loads(result.stdout)["outbox"]
    assert outbox["rows"] == 4 and outbox["oldest_age"] >= 0
    result = cli("status", "--redis-url", redis_url, LIGHTBUS_OUTBOX_URL="postgresql+psycopg://u:pw@127.0.0.1:1/x")
    assert result.returncode == 2 and "cannot count the outbox in postgresql+psycopg://u:***@127.0.0.1:1/x" in result.stderr
    engine.dispose()


def test_metrics_report_the_backlog(tmp_path, shop_bus):
    from prometheus_client import CollectorRegistry, generate_latest

    from lightbus_sync.metrics import instrument

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    create_tables(engine)
    registry = CollectorRegistry()
    instrument(shop_bus, registry=registry).attach_outbox(url)
    text = generate_latest(registry).decode()
    assert f'lightbus_sync_outbox_rows{{database="{url}"}} 0.0' in text
    assert "lightbus_sync_outbox_oldest_age_seconds{" not in text
    with engine.begin() as connection:
        shop_bus.outbox(connection).shop.order_placed.fire_many([{"order_id": i, "amount": i} for i in range(3)])
    text = generate_latest(registry).decode()
    assert f'lightbus_sync_outbox_rows{{database="{url}"}} 3.0' in text
    assert f'lightbus_sync_outbox_oldest_age_seconds{{database="{url}"}}' in text
    engine.dispose()


def test_outbox_config_keys_are_validated_and_read_from_the_environment():
    with pytest.raises(ConfigurationError, match=r"\$\.bus\.outbox\.url: expected a SQLAlchemy database URL"):
        lightbus_sync.create(config={"bus": {"outbox": {"url": "nope"}}})
    with pytest.raises(ConfigurationError, match=r"\$\.bus\.outbox\.poll_interval: must be > 0"):
        lightbus_sync.create(config={"bus": {"outbox": {"poll_interval": 0}}})
    with pytest.raises(ConfigurationError, match=r"\$\.bus\.outbox: unknown key\(s\) urls"):
        lightbus_sync.create(config={"bus": {"outbox": {"urls": "x"}}})
    from lightbus_sync.config import load_config

    config = load_config(environ={"LIGHTBUS_OUTBOX_URL": "sqlite:///x.db"})
    assert config.bus.outbox.url == "sqlite:///x.db"
    assert load_config(environ={}).bus.outbox.url is None
