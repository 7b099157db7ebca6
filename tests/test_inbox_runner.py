"""listen(..., inbox=engine) in the runner, in-process, on real Redis and real SQLite /
PostgreSQL: the handler's writes share the inbox's transaction, a redelivered event is
acked without running, a failure rolls back and is retried or dead-lettered as without
an inbox, and the purge runs from the workers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lightbus_sync import Api, Event, InvalidListener
from lightbus_sync.outbox.tables import inbox_table
from lightbus_sync.wire import encode_event
from outbox_apps.sql_support import outbox_engine, rows  # noqa: F401 (fixture)
from runner_apps.harness import make_bus, pending_count, wait_until  # noqa: F401 (fixture)


class PaymentsApi(Api):
    paid = Event(parameters=("order_id", "amount"))

    class Meta:
        name = "ib.payments"


STREAM = "ib.payments.*:stream"
metadata = sa.MetaData()
ledger = sa.Table("ledger", metadata, sa.Column("order_id", sa.Integer), sa.Column("amount", sa.Integer))


@pytest.fixture
def engine(outbox_engine):
    metadata.create_all(outbox_engine)
    return outbox_engine


def test_the_handler_writes_in_the_inbox_transaction_once_per_event(make_bus, engine, redis_client):
    bus = make_bus()
    runs = []

    def book(order_id, amount, session: Session):
        runs.append(order_id)
        session.execute(ledger.insert().values(order_id=order_id, amount=amount))

    bus.ib.payments.paid.listen(book, listener_name="book", inbox=engine)
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        message = bus.ib.payments.paid.fire(order_id=1, amount=30)
        wait_until(lambda: rows(engine, ledger), what="the handler's write")
        # The same event again (a retried XADD, a relay that died before its delete...).
        fields = encode_event(message.id, "ib.payments", "paid", 1, {"order_id": 1, "amount": 30})
        redis_client.xadd(STREAM, fields)
        wait_until(lambda: runner.stats.get("inbox_duplicates") == 1, what="the duplicate skipped")
        wait_until(lambda: pending_count(redis_client, STREAM, "svc-book") == 0, what="both acked")
    assert runs == [1]
    assert [(r.order_id, r.amount) for r in rows(engine, ledger)] == [(1, 30)]
    [row] = rows(engine, inbox_table)
    assert (row.listener_group, row.event_id, row.stream) == ("svc-book", message.id, STREAM)


def test_a_failing_handler_rolls_back_and_is_retried(make_bus, engine, redis_client):
    bus = make_bus()
    runs = []

    def book(order_id, amount, session: Session):
        runs.append(order_id)
        session.execute(ledger.insert().values(order_id=order_id, amount=amount))
        if len(runs) == 1:
            raise RuntimeError("the first run fails after writing")

    bus.ib.payments.paid.listen(book, listener_name="book", inbox=engine, retry_backoff=(0, 0))
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.ib.payments.paid.fire(order_id=2, amount=5)
        wait_until(lambda: len(runs) == 2 and pending_count(redis_client, STREAM, "svc-book") == 0, 20,
                   what="the retry ran and was acked")
    assert [(r.order_id, r.amount) for r in rows(engine, ledger)] == [(2, 5)]  # the first run's write rolled back
    assert len(rows(engine, inbox_table)) == 1


def test_a_handler_that_always_fails_is_dead_lettered_with_nothing_written(make_bus, engine, redis_client):
    bus = make_bus()

    def book(order_id, amount, session: Session):
        session.execute(ledger.insert().values(order_id=order_id, amount=amount))
        raise ValueError("never")

    bus.ib.payments.paid.listen(book, listener_name="book", inbox=engine, retry_backoff=(0, 0), max_deliveries=2)
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.ib.payments.paid.fire(order_id=3, amount=1)
        wait_until(lambda: redis_client.xlen("{" + STREAM + "}:dead") == 1, 20, what="the dead letter")
    assert rows(engine, ledger) == [] and rows(engine, inbox_table) == []


def test_the_workers_purge_rows_of_acked_entries(make_bus, engine, redis_client, monkeypatch):
    import lightbus_sync.inbox

    monkeypatch.setattr(lightbus_sync.inbox, "PURGE_INTERVAL", 0.0)  # purge at every delivery
    bus = make_bus()
    handled = []
    bus.ib.payments.paid.listen(lambda order_id, amount: handled.append(order_id), listener_name="book",
                                inbox=engine, inbox_retention=0.001)
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        first = bus.ib.payments.paid.fire(order_id=1, amount=1)
        wait_until(lambda: handled == [1] and pending_count(redis_client, STREAM, "svc-book") == 0)
        second = bus.ib.payments.paid.fire(order_id=2, amount=1)
        wait_until(lambda: handled == [1, 2] and pending_count(redis_client, STREAM, "svc-book") == 0)
    # While the second was handled (and pending), the first's row could go, not its own.
    assert [r.event_id for r in rows(engine, inbox_table)] == [second.id]
    assert first.id != second.id


def test_listen_checks_the_inbox_options(make_bus):
    bus = make_bus()

    def needs_session(order_id, amount, session: Session):
        pass

    with pytest.raises(InvalidListener, match="'session' is annotated sqlalchemy.orm.Session.*inbox=engine"):
        bus.ib.payments.paid.listen(needs_session, listener_name="a")
    with pytest.raises(InvalidListener, match="inbox= takes a SQLAlchemy Engine, got str"):
        bus.ib.payments.paid.listen(needs_session, listener_name="b", inbox="sqlite://")
    with pytest.raises(InvalidListener, match="inbox_retention needs inbox=engine"):
        bus.ib.payments.paid.listen(lambda order_id, amount: None, listener_name="c", inbox_retention=60)
    def local_annotation(order_id, amount, session: "orm.Session"):  # noqa: F821 (not resolvable here)
        pass

    assert bus.ib.payments.paid.listen(local_annotation, listener_name="e", inbox=sa.create_engine("sqlite://")
                                       ).session_parameter == "session"
    with pytest.raises(InvalidListener, match="retention must be > 0"):
        bus.ib.payments.paid.listen(needs_session, listener_name="d", inbox=sa.create_engine("sqlite://"),
                                    inbox_retention=0)


def test_deliver_runs_an_inbox_handler_in_its_transaction(make_bus, engine):
    from lightbus_sync.testing import deliver

    bus = make_bus()

    def book(order_id, amount, session: Session):
        session.execute(ledger.insert().values(order_id=order_id, amount=amount))
        return "booked"

    bus.ib.payments.paid.listen(book, listener_name="book", inbox=engine)
    (delivery,) = deliver(bus, "ib.payments.paid", order_id=4, amount=9)
    assert delivery.result == "booked"
    assert [(r.order_id, r.amount) for r in rows(engine, ledger)] == [(4, 9)]
    assert [r.event_id for r in rows(engine, inbox_table)] == [delivery.message.id]
