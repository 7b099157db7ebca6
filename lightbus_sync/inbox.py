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
delivered again to their group (see ``purge``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

from .stream_ids import parse_id


logger = logging.getLogger(__name__)

#: Default retention of inbox rows, in seconds (7 days).
DEFAULT_RETENTION = 7 * 86400.0
#: Seconds between purges made by one ``Inbox``.
PURGE_INTERVAL = 600.0
_PURGE_BATCH = 1000




class Inbox:
    """One database's inbox, shared by the listeners given ``inbox=`` that engine."""

    def __init__(self, engine: Any, retention: float = DEFAULT_RETENTION) -> None:
        from sqlalchemy.engine import Engine

        if not isinstance(engine, Engine):
            raise TypeError(f"inbox= takes a SQLAlchemy Engine, got {type(engine).__name__} {engine!r}")
        if retention <= 0:
            raise ValueError(f"inbox retention must be > 0 seconds, got {retention!r}")
        self.engine = engine
        self.retention = retention
        self._insert = _insert_ignoring_duplicates(engine.dialect.name)
        self._last_purge = time.monotonic()
        self._purge_lock = threading.Lock()

    def __repr__(self) -> str:
        from .outbox.urls import safe_url

        return f"<Inbox {safe_url(self.engine)}>"

    def handle(self, group: str, event_id: str, stream: str, stream_id: str,
               call: Callable[[Any], Any]) -> bool:
        """Run ``call(session)`` in a transaction that records (group, event id); return
        False, without calling it, when the event was already handled for ``group``.
        ``call``'s exception rolls the transaction back and propagates."""
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
        last delivered one); only rows below it go. None (the group is gone, Redis
        unreachable) keeps them all. Returns how many rows were deleted."""
        import sqlalchemy as sa

        from .outbox.tables import inbox_table as table

        cutoff = (time.time() if now is None else now) - self.retention
        deleted = 0
        with self.engine.connect() as connection:
            streams = connection.execute(
                sa.select(table.c.stream).where(table.c.listener_group == group, table.c.handled_at < cutoff)
                .distinct()
            ).scalars().all()
        for stream in streams:
            floor = redeliverable_from(stream, group)
            if floor is None:
                continue
            floor_key = parse_id(floor)
            with self.engine.begin() as connection:
                rows = connection.execute(
                    sa.select(table.c.event_id, table.c.stream_id)
                    .where(table.c.listener_group == group, table.c.stream == stream, table.c.handled_at < cutoff)
                    .limit(_PURGE_BATCH * 10)
                ).all()
                gone = [event_id for event_id, stream_id in rows if parse_id(stream_id) < floor_key]
                for start in range(0, len(gone), _PURGE_BATCH):
                    deleted += connection.execute(
                        sa.delete(table).where(table.c.listener_group == group,
                                               table.c.event_id.in_(gone[start:start + _PURGE_BATCH]))
                    ).rowcount
        if deleted:
            logger.info("inbox %r: purged %d row(s) of %s older than %.0fs", self, deleted, group, self.retention)
        return deleted


def _insert_ignoring_duplicates(dialect_name: str) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL, SQLite: a row back
    means it is new) or ``INSERT IGNORE`` (MySQL/MariaDB: its rowcount says so)."""
    from .outbox.tables import inbox_table

    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert(inbox_table).on_conflict_do_nothing().returning(inbox_table.c.event_id)
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        return insert(inbox_table).on_conflict_do_nothing().returning(inbox_table.c.event_id)
    if dialect_name in ("mysql", "mariadb"):
        return inbox_table.insert().prefix_with("IGNORE")
    raise ValueError(f"the inbox supports PostgreSQL, SQLite and MySQL/MariaDB, not {dialect_name!r}")
