"""The inbox on the Django ORM: a listener registered with ``inbox="<database alias>"``
runs its handler inside ``transaction.atomic(using=alias)`` after recording the event
(listener group, event id) in the inbox table of that database, in the same
transaction. A redelivered event whose row is there is skipped (and acked), so the
handler's database effects happen once per event and listener.

Two deliveries of one event at once (a reclaim while the first still runs) meet at the
row: on PostgreSQL the second insert waits for the first transaction and then skips if
it committed; on SQLite writers take turns.

The runner purges the rows it no longer needs as it does for the SQLAlchemy inbox
(``lightbus_sync.inbox.BaseInbox.purge``): every ``PURGE_INTERVAL`` seconds, on a worker
thread, rows older than ``inbox_retention`` (default 7 days) whose entries the group can
no longer be given again.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, ContextManager, Iterator, Optional, Sequence

from ...errors import InvalidListener
from ...inbox import DEFAULT_RETENTION, BaseInbox
from ...listeners import Listener, ListenerRegistry

_INSERT = (
    "INSERT INTO lightbus_inbox (listener_group, event_id, stream, stream_id, handled_at) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_VENDORS = ("postgresql", "sqlite")


class DjangoInbox(BaseInbox):
    """The inbox table of Django's database ``using``, written on the current thread's
    connection to it (``listen(..., inbox=using)``)."""

    def __init__(self, using: str, retention: float = DEFAULT_RETENTION) -> None:
        from django.db import connections

        if not isinstance(using, str) or using not in connections:
            raise InvalidListener(f"inbox={using!r} names no database of settings.DATABASES")
        vendor = connections[using].vendor
        if vendor not in _VENDORS:
            raise InvalidListener(f"inbox={using!r} is a {vendor} database; the inbox supports PostgreSQL and SQLite")
        try:
            super().__init__(retention)
        except ValueError as exc:
            raise InvalidListener(f"inbox={using!r}: {exc}") from None
        self.using = using

    def __repr__(self) -> str:
        return f"<DjangoInbox using={self.using!r}>"

    def handle(self, group: str, event_id: str, stream: str, stream_id: str,
               call: Callable[[Any], Any]) -> bool:
        from django.db import connections, transaction

        with transaction.atomic(using=self.using):
            with connections[self.using].cursor() as cursor:
                cursor.execute(_INSERT, [group, event_id, stream, stream_id or "", time.time()])
                if cursor.rowcount != 1:
                    return False  # handled before: this atomic block wrote nothing
            call(None)
        return True

    def _streams_before(self, group: str, cutoff: float) -> Sequence[str]:
        from django.db import connections

        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT DISTINCT stream FROM lightbus_inbox WHERE listener_group = %s AND handled_at < %s",
                           [group, cutoff])
            return [row[0] for row in cursor.fetchall()]

    def _transaction(self) -> ContextManager[Any]:
        return _atomic_cursor(self.using)

    def _rows_before(self, tx: Any, group: str, stream: str, cutoff: float, limit: int) -> Sequence[tuple[str, str]]:
        tx.execute("SELECT event_id, stream_id FROM lightbus_inbox WHERE listener_group = %s AND stream = %s "
                   "AND handled_at < %s LIMIT %s", [group, stream, cutoff, limit])
        return [(row[0], row[1]) for row in tx.fetchall()]

    def _delete(self, tx: Any, group: str, event_ids: Sequence[str]) -> int:
        marks = ", ".join(["%s"] * len(event_ids))
        tx.execute(f"DELETE FROM lightbus_inbox WHERE listener_group = %s AND event_id IN ({marks})",
                   [group, *event_ids])
        return int(tx.rowcount)


@contextlib.contextmanager
def _atomic_cursor(using: str) -> Iterator[Any]:
    from django.db import connections, transaction

    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        yield cursor


class InboxListenerRegistry(ListenerRegistry):
    """The project bus's listeners: ``listen()``'s ``inbox`` also takes a Django database
    alias (a ``DjangoInbox``, with ``inbox_retention`` seconds); a SQLAlchemy engine still
    gives the core inbox."""

    def add(self, events: Any, handler: Callable[..., Any], *, listener_name: Any,
            inbox: Any = None, inbox_retention: Optional[float] = None, **options: Any) -> Listener:
        if isinstance(inbox, str):
            inbox = DjangoInbox(inbox, DEFAULT_RETENTION if inbox_retention is None else inbox_retention)
            inbox_retention = None
        return super().add(events, handler, listener_name=listener_name, inbox=inbox,
                           inbox_retention=inbox_retention, **options)
