"""The idempotent inbox: a handler's database writes happen once per event and listener.

``listen(handler, listener_name=..., inbox=engine)`` makes the runner call
``Inbox.handle`` for each delivery: in one transaction on ``engine`` it inserts
(listener group, event id) into ``lightbus_inbox``; if the row was there already (the
event was handled and committed before: a redelivery after a crash, a reclaim, a
duplicate entry), it commits nothing and the runner skips the handler and acks.
Otherwise the handler runs inside that transaction (a parameter annotated
``sqlalchemy.orm.Session`` receives its session), the transaction commits, and only
then is the entry acked. A handler that raises rolls everything back, the inbox row
included, and the entry is retried or dead-lettered as without an inbox.

Two deliveries of one event running at once (a reclaim while the first run is still
going) serialize on the row: the second waits for the first transaction and then skips.

``purge()`` deletes rows older than the retention whose entries can no longer be
delivered again to their group (see ``BaseInbox.purge``, the rule every inbox shares).
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from typing import Any, Callable, ContextManager, Optional, Sequence

from .stream_ids import parse_id


logger = logging.getLogger(__name__)

#: Default retention of inbox rows, in seconds (7 days).
DEFAULT_RETENTION = 7 * 86400.0
#: Seconds between purges made by one ``Inbox``.
PURGE_INTERVAL = 600.0
_PURGE_BATCH = 1000




class BaseInbox(abc.ABC):
    """What the runner needs of an inbox: ``handle()`` each delivery at most once per
    group, and ``purge()`` rows that can no longer be redelivered, every ``PURGE_INTERVAL``
    seconds (``purge_due()``). Subclasses store the rows (``Inbox``: SQLAlchemy; the
    Django app's: the Django ORM's connections); the purge's rule is this class's."""

    def __init__(self, retention: float = DEFAULT_RETENTION) -> None:
        if isinstance(retention, bool) or not isinstance(retention, (int, float)) or retention <= 0:
            raise ValueError(f"inbox retention must be > 0 seconds, got {retention!r}")
        self.retention = float(retention)
        self._last_purge = time.monotonic()
        self._purge_lock = threading.Lock()

    @abc.abstractmethod
    def handle(self, group: str, event_id: str, stream: str, stream_id: str,
               call: Callable[[Any], Any]) -> bool:
        """Run ``call(session)`` in a transaction that records (group, event id); return
        False, without calling it, when the event was already handled for ``group``.
        ``call``'s exception rolls the transaction back and propagates."""

    @abc.abstractmethod
    def _streams_before(self, group: str, cutoff: float) -> Sequence[str]:
        """The streams of ``group``'s rows handled before ``cutoff``."""

    @abc.abstractmethod
    def _transaction(self) -> ContextManager[Any]:
        """A transaction for one stream's deletions (committed on a clean exit)."""

    @abc.abstractmethod
    def _rows_before(self, tx: Any, group: str, stream: str, cutoff: float, limit: int) -> Sequence[tuple[str, str]]:
        """Up to ``limit`` (event id, stream id) of ``group``'s rows of ``stream`` handled before ``cutoff``."""

    @abc.abstractmethod
    def _delete(self, tx: Any, group: str, event_ids: Sequence[str]) -> int:
        """Delete ``group``'s rows of ``event_ids``; how many went."""

    def purge_due(self) -> bool:
        """True when the last purge is ``PURGE_INTERVAL`` seconds old (and claims the turn)."""
        with self._purge_lock:
            if time.monotonic() - self._last_purge < PURGE_INTERVAL:
                return False
            self._last_purge = time.monotonic()
            return True

    def purge(self, group: str, redeliverable_from: Callable[[str, str], Optional[str]],
              now: Optional[float] = None) -> int:
        """Delete ``group``'s rows older than the retention whose entries cannot come
        back: for each of its streams, ``redeliverable_from(stream, group)`` gives the
        lowest entry id the group may still be given (its lowest pending id, else its
        last delivered one: ``trimming.redelivery_floor``); only rows below it go. None
        (the group is gone, Redis unreachable) keeps them all. Returns how many rows
        were deleted."""
        cutoff = (time.time() if now is None else now) - self.retention
        deleted = 0
        for stream in self._streams_before(group, cutoff):
            floor = redeliverable_from(stream, group)
            if floor is None:
                continue
            floor_key = parse_id(floor)
            with self._transaction() as tx:
                rows = self._rows_before(tx, group, stream, cutoff, _PURGE_BATCH * 10)
                gone = [event_id for event_id, stream_id in rows if _below(stream_id, floor_key)]
                for start in range(0, len(gone), _PURGE_BATCH):
                    deleted += self._delete(tx, group, gone[start:start + _PURGE_BATCH])
        if deleted:
            logger.info("inbox %r: purged %d row(s) of %s older than %.0fs", self, deleted, group, self.retention)
        return deleted


def _below(stream_id: str, floor_key: tuple[int, int]) -> bool:
    """The row's entry is before the floor; a row without a stream id (recorded by
    ``testing.deliver()``, or damaged) has no place in the stream, and stays."""
    try:
        return parse_id(stream_id) < floor_key
    except ValueError:
        return False


class Inbox(BaseInbox):
    """One database's inbox, shared by the listeners given ``inbox=`` that engine."""

    def __init__(self, engine: Any, retention: float = DEFAULT_RETENTION) -> None:
        from sqlalchemy.engine import Engine

        if not isinstance(engine, Engine):
            raise TypeError(f"inbox= takes a SQLAlchemy Engine, got {type(engine).__name__} {engine!r}")
        super().__init__(retention)
        self.engine = engine
        self._insert = _insert_ignoring_duplicates(engine.dialect.name)

    def __repr__(self) -> str:
        from .outbox.urls import safe_url

        return f"<Inbox {safe_url(self.engine)}>"

    def handle(self, group: str, event_id: str, stream: str, stream_id: str,
               call: Callable[[Any], Any]) -> bool:
        from sqlalchemy.orm import Session

        with Session(self.engine) as session:
            with session.begin():
                result = session.connection().execute(self._insert, {
                    "listener_group": group, "event_id": event_id, "stream": stream,
                    "stream_id": stream_id, "handled_at": time.time(),
                })
                inserted = result.first() is not None if result.returns_rows else result.rowcount > 0
                if not inserted:
                    session.rollback()
                    return False
                call(session)
        return True

    def _streams_before(self, group: str, cutoff: float) -> Sequence[str]:
        import sqlalchemy as sa

        from .outbox.tables import inbox_table as table

        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(table.c.stream).where(table.c.listener_group == group, table.c.handled_at < cutoff)
                .distinct()
            ).scalars().all()

    def _transaction(self) -> ContextManager[Any]:
        return self.engine.begin()

    def _rows_before(self, tx: Any, group: str, stream: str, cutoff: float, limit: int) -> Sequence[tuple[str, str]]:
        import sqlalchemy as sa

        from .outbox.tables import inbox_table as table

        return [tuple(row) for row in tx.execute(
            sa.select(table.c.event_id, table.c.stream_id)
            .where(table.c.listener_group == group, table.c.stream == stream, table.c.handled_at < cutoff)
            .limit(limit)
        ).all()]

    def _delete(self, tx: Any, group: str, event_ids: Sequence[str]) -> int:
        import sqlalchemy as sa

        from .outbox.tables import inbox_table as table

        return int(tx.execute(
            sa.delete(table).where(table.c.listener_group == group, table.c.event_id.in_(list(event_ids)))
        ).rowcount)


def _insert_ignoring_duplicates(dialect_name: str) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL, SQLite: a row back
    means it is new) or ``INSERT IGNORE`` (MySQL/MariaDB: its rowcount says so)."""
    from .outbox.tables import inbox_table

    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(inbox_table).on_conflict_do_nothing().returning(inbox_table.c.event_id)
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(inbox_table).on_conflict_do_nothing().returning(inbox_table.c.event_id)
    if dialect_name in ("mysql", "mariadb"):
        return inbox_table.insert().prefix_with("IGNORE")
    raise ValueError(f"the inbox supports PostgreSQL, SQLite and MySQL/MariaDB, not {dialect_name!r}")
