"""How a relay takes rows from the outbox without another relay taking them too.

``LockingClaims`` (PostgreSQL): each stream's rows are taken in a transaction that holds
a per-stream advisory lock (so one relay at a time publishes a stream, in order): one
``DELETE ... WHERE id = ANY(ARRAY(SELECT ... FOR UPDATE SKIP LOCKED)) RETURNING`` claims them,
and the transaction commits after Redis has them (else it rolls back, and the rows are
back). A relay that dies mid-way loses its locks with its connection.
Application transactions only insert, and never wait on these locks.

``LeaseClaims`` (SQLite, and any other database): one relay at a time holds a lease row
(renewed every round, taken over when it lapses); it reads the oldest rows, publishes
them and deletes them in short transactions, so the database's write lock is never
held while Redis is called.

Both hand out ``Batch`` es: one stream's rows, oldest first, and ``delete(ids)``, called
once Redis has them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from typing import Any, Callable, Iterator, Optional, Sequence

import attrs
import sqlalchemy as sa

from .tables import lease_table, outbox_table

#: The first key of the advisory locks taken per stream (the second is the stream's hash).
ADVISORY_LOCK_NAMESPACE = 7395
LEASE_NAME = "relay"


@attrs.define
class Batch:
    """One stream's claimed rows (``id``, ``api_name``, ``stream``, ``event_id`` and
    ``fields``: the stored JSON array), oldest first; ``delete`` removes them once published."""

    stream: str
    rows: list[Any]
    delete: Callable[[Sequence[int]], None]


_COLUMNS = (outbox_table.c.id, outbox_table.c.api_name, outbox_table.c.stream,
            outbox_table.c.event_id, outbox_table.c.fields)


def _delete(connection: Any, ids: Sequence[int]) -> None:
    if ids:
        connection.execute(sa.delete(outbox_table).where(outbox_table.c.id.in_(list(ids))))


def _deleted_at_commit(ids: Sequence[int]) -> None:
    """``Batch.delete`` of claims that deleted their rows already (in the open transaction)."""


def _oldest_streams(connection: Any, limit: int) -> list[str]:
    """The streams of the oldest ``limit`` rows, the stream of the oldest row first."""
    oldest = sa.select(outbox_table.c.id, outbox_table.c.stream).order_by(outbox_table.c.id).limit(limit).subquery()
    result = connection.execute(
        sa.select(oldest.c.stream).group_by(oldest.c.stream).order_by(sa.func.min(oldest.c.id)))
    return list(result.scalars())


def relay_owner_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


#: ``= ANY(ARRAY(...))`` makes PostgreSQL delete by primary key (``IN (subquery)`` would
#: hash-join against a scan of the whole table).
_CLAIM_AND_DELETE = sa.text(
    "DELETE FROM lightbus_outbox WHERE id = ANY(ARRAY("
    "SELECT id FROM lightbus_outbox WHERE stream = :stream ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"
    ")) RETURNING id, api_name, stream, event_id, fields"
)


class LockingClaims:
    """PostgreSQL: per-stream advisory lock + ``FOR UPDATE SKIP LOCKED``, one transaction per batch."""

    def __init__(self, engine: Any, batch_size: int) -> None:
        self.engine = engine
        self.batch_size = batch_size

    def batches(self) -> Iterator[contextlib.AbstractContextManager[Optional[Batch]]]:
        with self.engine.connect() as connection:
            streams = _oldest_streams(connection, min(self.batch_size, 100))
            connection.rollback()
            for stream in streams:
                yield self._claim(connection, stream)

    @contextlib.contextmanager
    def _claim(self, connection: Any, stream: str) -> Iterator[Optional[Batch]]:
        with connection.begin():
            # Not waiting for the commit's WAL flush is safe here: a delete lost in a
            # crash brings rows back, and Redis's record of relayed ids skips them.
            locked = connection.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(:namespace, hashtext(:stream)), "
                        "set_config('synchronous_commit', 'off', true)"),
                {"namespace": ADVISORY_LOCK_NAMESPACE, "stream": stream},
            ).scalar()
            if not locked:  # another relay is publishing this stream
                yield None
                return
            # Claimed and deleted in one statement; the delete is final only when the
            # transaction commits, after Redis has the entries.
            rows = list(connection.execute(_CLAIM_AND_DELETE, {"stream": stream, "limit": self.batch_size}))
            rows.sort(key=lambda row: row.id)
            yield Batch(stream, rows, _deleted_at_commit) if rows else None

    def release(self) -> None:
        """Nothing to give back: the locks end with each transaction."""


class LeaseClaims:
    """One relay at a time, by a lease row; rows read and deleted in short transactions."""

    def __init__(self, engine: Any, batch_size: int, lease_seconds: float = 30.0, owner: Optional[str] = None) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.owner = owner or relay_owner_name()

    def hold_lease(self) -> bool:
        """Take or renew the lease; False while another live relay holds it."""
        now = time.time()
        with self.engine.begin() as connection:
            renewed = connection.execute(
                sa.update(lease_table)
                .where(lease_table.c.name == LEASE_NAME)
                .where(sa.or_(lease_table.c.owner == self.owner, lease_table.c.expires_at < now))
                .values(owner=self.owner, expires_at=now + self.lease_seconds)
            ).rowcount
            if renewed:
                return True
            exists = connection.execute(
                sa.select(lease_table.c.name).where(lease_table.c.name == LEASE_NAME)
            ).first()
            if exists:
                return False
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.insert(lease_table).values(
                    name=LEASE_NAME, owner=self.owner, expires_at=now + self.lease_seconds))
            return True
        except sa.exc.IntegrityError:  # another relay inserted it first
            return False

    def batches(self) -> Iterator[contextlib.AbstractContextManager[Optional[Batch]]]:
        if not self.hold_lease():
            return
        with self.engine.connect() as connection:
            rows = list(connection.execute(
                sa.select(*_COLUMNS).order_by(outbox_table.c.id).limit(self.batch_size)))
            connection.rollback()
        by_stream: dict[str, list[Row]] = {}
        for row in rows:
            by_stream.setdefault(row.stream, []).append(row)
        for stream, stream_rows in by_stream.items():
            yield contextlib.nullcontext(Batch(stream, stream_rows, self._delete))

    def _delete(self, ids: Sequence[int]) -> None:
        with self.engine.begin() as connection:
            _delete(connection, ids)

    def release(self) -> None:
        """Give the lease up (a stopping relay), so another takes over at once."""
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(lease_table)
                .where(lease_table.c.name == LEASE_NAME).where(lease_table.c.owner == self.owner)
                .values(expires_at=0.0)
            )


def claims_for(engine: Any, batch_size: int) -> Any:
    """``LockingClaims`` on PostgreSQL, ``LeaseClaims`` elsewhere."""
    if engine.dialect.name == "postgresql":
        return LockingClaims(engine, batch_size)
    return LeaseClaims(engine, batch_size)
