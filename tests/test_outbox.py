"""The transactional outbox: bus.outbox(session) writes rows in the caller's transaction;
the relay publishes committed rows to Redis once each, in order per stream. Real SQLite
and PostgreSQL databases, real Redis."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import lightbus_sync
from lightbus_sync.errors import ConfigurationError, MissingParameter, UnexpectedParameter
from lightbus_sync.outbox import OutboxTransactionError, create_tables, outbox_backlog, relay_for_bus
from lightbus_sync.keys import outbox_relayed_key
from lightbus_sync.outbox.tables import lease_table, outbox_table

from outbox_apps.shop import Base, Order, ShopApi  # noqa: F401  (registers the API)

STREAM = "shop.*:stream"


@pytest.fixture
def engine(database_url):
    engine = sa.create_engine(database_url)
    create_tables(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def bus(redis_url):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="shop")
    bus.register(ShopApi)
    yield bus
    bus.close()


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def outbox_rows(engine):
    with engine.connect() as connection:
        return connection.execute(sa.select(outbox_table).order_by(outbox_table.c.id)).all()


def stream_event_ids(redis_client, stream=STREAM):
    return [fields[b"id"].decode() for _, fields in redis_client.xrange(stream)]


def test_fire_writes_a_row_in_the_transaction_and_the_relay_publishes_it(bus, engine, redis_client):
    with Session(engine) as session, session.begin():
        session.add(Order(id=1, amount=30))
        message = bus.outbox(session).shop.order_placed.fire(order_id=1, amount=30)
        assert redis_client.exists(STREAM) == 0  # nothing reaches Redis before the commit
    assert message.stream_id is None
    assert message.kwargs == {"order_id": 1, "amount": 30}
    [row] = outbox_rows(engine)
    assert (row.stream, row.event_id, row.api_name) == (STREAM, message.id, "shop")

    relay = relay_for_bus(bus, engine)
    assert relay.relay_once() == 1
    assert outbox_rows(engine) == []
    [(entry_id, fields)] = redis_client.xrange(STREAM)
    # The same entry plain fire() writes: same fields, this event's id.
    plain = bus.shop.order_placed.fire(order_id=1, amount=30)
    [_, (_, plain_fields)] = redis_client.xrange(STREAM)
    assert fields[b"id"].decode() == message.id
    assert {k: v for k, v in fields.items() if k != b"id"} == {k: v for k, v in plain_fields.items() if k != b"id"}
    assert list(fields) == list(plain_fields)  # in wire order
    assert plain.id != message.id


def test_a_rolled_back_transaction_publishes_nothing(bus, engine, redis_client):
    with Session(engine) as session:
        session.add(Order(id=2, amount=5))
        bus.outbox(session).shop.order_placed.fire(order_id=2, amount=5)
        session.rollback()
    with pytest.raises(RuntimeError):
        with engine.begin() as connection:
            bus.outbox(connection).shop.order_placed.fire(order_id=3, amount=5)
            raise RuntimeError("the view fails")
    assert outbox_rows(engine) == []
    assert relay_for_bus(bus, engine).relay_once() == 0
    assert redis_client.exists(STREAM) == 0


def test_fire_many_and_several_transactions_keep_their_order_per_stream(bus, engine, redis_client):
    fired = []
    for start in (0, 10, 20):
        with engine.begin() as connection:
            fired += bus.outbox(connection).shop.order_placed.fire_many(
                [{"order_id": start + i, "amount": i} for i in range(10)]
            )
            fired.append(bus.outbox(connection).shop.order_cancelled.fire(order_id=start))
    relay = relay_for_bus(bus, engine, batch_size=7)  # several rounds, several batches
    assert relay.relay_all() == 33
    assert stream_event_ids(redis_client) == [m.id for m in fired]
    assert all(m.stream_id is None for m in fired)


def test_bad_calls_raise_as_fire_does_and_write_nothing(bus, engine):
    with engine.begin() as connection:
        view = bus.outbox(connection).shop.order_placed
        with pytest.raises(MissingParameter):
            view.fire(order_id=1)
        with pytest.raises(UnexpectedParameter, match="fire_many\\(\\) item 1"):
            view.fire_many([{"order_id": 1, "amount": 1}, {"order_id": 2, "amount": 1, "x": 1}])
        with pytest.raises(lightbus_sync.UnknownEvent):
            bus.outbox(connection).shop.no_such_event
    assert outbox_rows(engine) == []


def test_outside_a_transaction_is_a_clear_error(bus, engine, database_url):
    with pytest.raises(OutboxTransactionError, match="not an Engine"):
        bus.outbox(engine).shop.order_placed.fire(order_id=1, amount=1)
    with engine.connect() as connection:
        with pytest.raises(OutboxTransactionError, match="not in a transaction"):
            bus.outbox(connection).shop.order_placed.fire(order_id=1, amount=1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.begin()
        with pytest.raises(OutboxTransactionError, match="AUTOCOMMIT"):
            bus.outbox(connection).shop.order_placed.fire(order_id=1, amount=1)
    with Session(engine, autobegin=False) as session:
        with pytest.raises(OutboxTransactionError, match="cannot begin one"):
            bus.outbox(session).shop.order_placed.fire(order_id=1, amount=1)
    with pytest.raises(OutboxTransactionError, match="expected a SQLAlchemy Session or Connection, got str"):
        bus.outbox("session").shop.order_placed.fire(order_id=1, amount=1)
    assert outbox_rows(engine) == []


def test_a_session_that_autobegins_commits_the_event_with_the_session(bus, engine):
    with Session(engine) as session:
        session.add(Order(id=9, amount=1))
        bus.outbox(session).shop.order_placed.fire(order_id=9, amount=1)
        session.commit()
    assert len(outbox_rows(engine)) == 1


def test_a_relay_that_died_after_its_xadd_does_not_publish_twice(bus, engine, redis_client):
    with engine.begin() as connection:
        fired = bus.outbox(connection).shop.order_placed.fire_many([{"order_id": i, "amount": i} for i in range(5)])
    # A relay published the first three, then died before deleting the rows.
    rows = outbox_rows(engine)
    transport = bus.transport_for("shop")
    published = transport.publish_outbox_entries(
        STREAM, outbox_relayed_key(STREAM), [(r.event_id, r.fields) for r in rows[:3]], None, 60, 5)
    assert all(published)
    relay = relay_for_bus(bus, engine)
    assert relay.relay_once() == 5
    assert stream_event_ids(redis_client) == [m.id for m in fired]
    assert (relay.stats.relayed, relay.stats.already_relayed) == (2, 3)
    assert outbox_rows(engine) == []
    assert redis_client.pttl(outbox_relayed_key(STREAM)) > 0  # the record expires


def test_the_relay_waits_for_redis_while_transactions_commit(engine, fresh_redis_server, redis_client):
    bus = lightbus_sync.create(redis_url=fresh_redis_server.url, service_name="shop",
                               config={"apis": {"default": {"event_transport": {"redis": {"socket_timeout": 0.5}}}}})
    bus.register(ShopApi)
    relay = relay_for_bus(bus, engine, poll_interval=0.05)
    try:
        relay.start()
        fresh_redis_server.stop()
        fired = []
        for i in range(20):  # commits go on while Redis is away
            with engine.begin() as connection:
                fired.append(bus.outbox(connection).shop.order_placed.fire(order_id=i, amount=i))
        assert wait_for(lambda: relay.stats.failures > 0)
        assert len(outbox_rows(engine)) == 20
        fresh_redis_server.start()
        assert wait_for(lambda: outbox_rows(engine) == [])
        client = fresh_redis_server.client()
        assert stream_event_ids(client) == [m.id for m in fired]
        client.close()
    finally:
        assert relay.stop()
        bus.close()


def test_backlog_counts_rows_and_the_age_of_the_oldest(bus, engine):
    assert outbox_backlog(engine).rows == 0
    assert outbox_backlog(engine).oldest_age is None
    with engine.begin() as connection:
        bus.outbox(connection).shop.order_placed.fire_many([{"order_id": i, "amount": i} for i in range(3)])
    time.sleep(0.05)
    backlog = outbox_backlog(engine)
    assert backlog.rows == 3
    assert backlog.oldest_age >= 0.05


def test_start_outbox_relay_runs_a_thread_until_stopped(bus, engine, redis_client):
    with bus.start_outbox_relay(engine, poll_interval=0.05) as relay:
        assert relay.is_alive()
        with engine.begin() as connection:
            message = bus.outbox(connection).shop.order_placed.fire(order_id=1, amount=1)
        assert wait_for(lambda: redis_client.exists(STREAM))
        assert stream_event_ids(redis_client) == [message.id]
    assert not relay.is_alive()


def test_no_outbox_configured_is_a_clear_error(bus):
    with pytest.raises(ConfigurationError, match="bus.outbox.url"):
        bus.start_outbox_relay()


# --- PostgreSQL: competing relays, LISTEN/NOTIFY ----------------------------------------


@pytest.fixture
def pg_engine(postgres_url):
    engine = sa.create_engine(postgres_url)
    create_tables(engine)
    yield engine
    engine.dispose()


def test_competing_relays_publish_each_row_once_in_order(bus, pg_engine, redis_client):
    fired = []
    stop = threading.Event()

    def produce():
        for i in range(40):
            with pg_engine.begin() as connection:
                fired.extend(bus.outbox(connection).shop.order_placed.fire_many(
                    [{"order_id": i * 10 + j, "amount": j} for j in range(5)]))
        stop.set()

    relays = [relay_for_bus(bus, pg_engine, batch_size=13, poll_interval=0.01) for _ in range(3)]
    producer = threading.Thread(target=produce)
    for relay in relays:
        relay.start()
    producer.start()
    producer.join()
    wait_for(lambda: len(redis_client.xrange(STREAM)) >= 200)
    for relay in relays:
        assert relay.stop()
    assert stream_event_ids(redis_client) == [m.id for m in fired]
    assert sum(r.stats.relayed for r in relays) == 200
    assert sum(1 for r in relays if r.stats.relayed) >= 1


def test_a_commit_wakes_the_relay_without_waiting_for_the_poll(bus, pg_engine, redis_client):
    relay = relay_for_bus(bus, pg_engine, poll_interval=60)
    with relay:
        time.sleep(0.3)  # the relay is now waiting on LISTEN
        with pg_engine.begin() as connection:
            message = bus.outbox(connection).shop.order_placed.fire(order_id=1, amount=1)
        assert wait_for(lambda: redis_client.exists(STREAM), 10)
        assert stream_event_ids(redis_client) == [message.id]


def test_a_relay_claim_does_not_block_application_inserts(bus, pg_engine):
    with pg_engine.begin() as connection:
        bus.outbox(connection).shop.order_placed.fire(order_id=1, amount=1)
    claims = relay_for_bus(bus, pg_engine)._claims
    batches = claims.batches()
    with next(batches) as batch:  # a relay holding its claim (as while Redis is slow)
        assert len(batch.rows) == 1
        other = pg_engine.connect()
        with other.begin():
            other.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            bus.outbox(other).shop.order_placed.fire(order_id=2, amount=1)
        other.close()
        # a second relay skips the stream while it is claimed
        second_batches = relay_for_bus(bus, pg_engine)._claims.batches()
        with next(second_batches) as second:
            assert second is None
        second_batches.close()
    batches.close()


# --- SQLite: one relay at a time ------------------------------------------------------


def test_sqlite_relays_take_turns_by_lease(bus, tmp_path, redis_client):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lease.db'}")
    create_tables(engine)
    first, second = relay_for_bus(bus, engine), relay_for_bus(bus, engine)
    with engine.begin() as connection:
        bus.outbox(connection).shop.order_placed.fire(order_id=1, amount=1)
    assert first.relay_once() == 1
    with engine.begin() as connection:
        bus.outbox(connection).shop.order_placed.fire(order_id=2, amount=1)
    assert second.relay_once() == 0  # the first holds the lease
    first._claims.release()  # a stopping relay gives it up
    assert second.relay_once() == 1
    with engine.connect() as connection:
        [lease] = connection.execute(sa.select(lease_table)).all()
    assert lease.owner == second._claims.owner


def test_the_relay_hides_the_database_password(bus):
    relay = relay_for_bus(bus, "postgresql+psycopg://app:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in repr(relay)
    assert "***" in repr(relay)


def test_the_library_imports_without_sqlalchemy_until_the_outbox_is_used():
    import subprocess
    import sys

    code = ("import sys, lightbus_sync; bus = lightbus_sync.create(redis_url='redis://127.0.0.1:9/0'); "
            "assert 'sqlalchemy' not in sys.modules, 'imported'; print(lightbus_sync.OutboxTransactionError)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
