"""The inbox alone (no runner): one transaction records (group, event id) and runs the
handler's writes; a second delivery of the event is skipped; a failure rolls both back;
the purge keeps rows whose entries may come back. Real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from lightbus_sync.inbox import Inbox
from lightbus_sync.outbox.tables import inbox_table
from outbox_apps.sql_support import outbox_engine, rows  # noqa: F401 (fixture)

metadata = sa.MetaData()
effects = sa.Table("effects", metadata, sa.Column("event_id", sa.String(64)), sa.Column("value", sa.Integer))


@pytest.fixture
def engine(outbox_engine):
    metadata.create_all(outbox_engine)
    return outbox_engine


def write(event_id, value):
    def call(session):
        session.execute(effects.insert().values(event_id=event_id, value=value))
    return call


def test_a_new_event_runs_in_the_transaction_and_a_second_delivery_is_skipped(engine):
    inbox = Inbox(engine)
    assert inbox.handle("shop-orders", "e1", "shop.*:stream", "1-0", write("e1", 1)) is True
    assert inbox.handle("shop-orders", "e1", "shop.*:stream", "5-0", write("e1", 2)) is False
    assert [(r.event_id, r.value) for r in rows(engine, effects)] == [("e1", 1)]
    [row] = rows(engine, inbox_table)
    assert (row.listener_group, row.event_id, row.stream, row.stream_id) == ("shop-orders", "e1", "shop.*:stream", "1-0")
    # another listener's group handles the same event once too
    assert inbox.handle("shop-audit", "e1", "shop.*:stream", "1-0", write("e1", 3)) is True


def test_a_failing_handler_rolls_back_its_writes_and_the_inbox_row(engine):
    inbox = Inbox(engine)

    def fails(session):
        write("e2", 1)(session)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        inbox.handle("shop-orders", "e2", "s", "1-0", fails)
    assert rows(engine, effects) == [] and rows(engine, inbox_table) == []
    assert inbox.handle("shop-orders", "e2", "s", "2-0", write("e2", 2)) is True  # the retry runs
    assert [(r.event_id, r.value) for r in rows(engine, effects)] == [("e2", 2)]


def test_two_deliveries_at_once_run_the_handler_once(engine):
    inbox = Inbox(engine)
    started = threading.Event()
    results = []

    def slow(session):
        write("e3", 1)(session)
        started.set()
        time.sleep(0.5)

    first = threading.Thread(target=lambda: results.append(inbox.handle("g", "e3", "s", "1-0", slow)))
    first.start()
    assert started.wait(10)
    results.append(inbox.handle("g", "e3", "s", "1-0", write("e3", 2)))  # waits for the first, then skips
    first.join()
    assert sorted(results) == [False, True]
    assert [(r.event_id, r.value) for r in rows(engine, effects)] == [("e3", 1)]


def test_purge_removes_only_old_rows_whose_entries_cannot_come_back(engine):
    inbox = Inbox(engine, retention=60)
    for event_id, stream_id in (("a", "100-0"), ("b", "200-0"), ("c", "300-0")):
        inbox.handle("g", event_id, "s", stream_id, lambda session: None)
    inbox.handle("other", "a", "s2", "100-0", lambda session: None)
    now = time.time()
    assert inbox.purge("g", lambda stream, group: "999-0", now=now) == 0  # nothing older than 60 s
    floors = {("s", "g"): "200-0", ("s2", "other"): None}  # 200-0 still pending; other's group unknown
    assert inbox.purge("g", lambda stream, group: floors[(stream, group)], now=now + 120) == 1
    assert inbox.purge("other", lambda stream, group: floors[(stream, group)], now=now + 120) == 0
    assert sorted((r.listener_group, r.event_id) for r in rows(engine, inbox_table)) == [
        ("g", "b"), ("g", "c"), ("other", "a")]


def test_purge_keeps_a_row_without_a_stream_id(engine):
    inbox = Inbox(engine, retention=60)
    inbox.handle("g", "delivered-by-a-test", "s", "", lambda session: None)
    inbox.handle("g", "old", "s", "100-0", lambda session: None)
    assert inbox.purge("g", lambda stream, group: "999-0", now=time.time() + 120) == 1
    assert [r.event_id for r in rows(engine, inbox_table)] == ["delivered-by-a-test"]


def test_bad_arguments_are_clear():
    with pytest.raises(TypeError, match="inbox= takes a SQLAlchemy Engine, got str"):
        Inbox("sqlite://")
    with pytest.raises(ValueError, match="retention must be > 0"):
        Inbox(sa.create_engine("sqlite://"), retention=0)
