"""The inbox on the Django ORM: a listener registered with ``inbox="<database alias>"``
runs its handler inside ``transaction.atomic(using=alias)`` after recording the event
(listener group, event id) in the inbox table of that database, in the same
transaction. A redelivered event whose row is there is skipped (and acked), so the
handler's database effects happen once per event and listener.

Two deliveries of one event at once (a reclaim while the first still runs) meet at the
row: on PostgreSQL the second insert waits for the first transaction and then skips if
it committed; on SQLite writers take turns.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from typing import Any, Callable

from ...errors import InvalidListener
from ...listeners import Listener, ListenerRegistry, bind_handler
from ...message import EventMessage

logger = logging.getLogger("lightbus_sync.contrib.django")

_INSERT = (
    "INSERT INTO lightbus_inbox (listener_group, event_id, stream, stream_id, handled_at) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_VENDORS = ("postgresql", "sqlite")


def record_event(using: str, group: str, message: EventMessage) -> bool:
    """Insert the inbox row of ``message`` for ``group`` on database ``using`` (inside
    the caller's transaction); False if it was there already (the event was handled)."""
    from django.db import connections

    with connections[using].cursor() as cursor:
        cursor.execute(_INSERT, [group, message.id, message.stream, message.stream_id or "", time.time()])
        return cursor.rowcount == 1


def inbox_handler(handler: Callable[..., Any], events: list[Any], using: str, group: str) -> Callable[..., Any]:
    """``handler``, run once per event for listener ``group`` with the inbox on database
    ``using``. ``handler`` is checked against every event first (as ``listen()`` checks
    it); the returned handler takes the ``EventMessage`` first."""
    from django.db import connections

    if using not in connections:
        raise InvalidListener(f"inbox={using!r} names no database of settings.DATABASES")
    vendor = connections[using].vendor
    if vendor not in _VENDORS:
        raise InvalidListener(f"inbox={using!r} is a {vendor} database; the inbox supports PostgreSQL and SQLite")
    wants_message = {bind_handler(handler, event.definition)[0] for event in events}.pop()

    @functools.wraps(handler)
    def run_once(event_message: EventMessage, **parameters: Any) -> Any:
        from django.db import transaction

        with transaction.atomic(using=using):
            if not record_event(using, group, event_message):
                logger.info("event %s already handled by %s (inbox %r): skipped",
                            event_message.id, group, using, extra={"event_id": event_message.id})
                return None
            if wants_message:
                return handler(event_message, **parameters)
            return handler(**parameters)

    signature = inspect.signature(handler)
    parameters = list(signature.parameters.values())
    if wants_message:
        parameters = parameters[1:]
    message_parameter = inspect.Parameter("event_message", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                          annotation=EventMessage)
    run_once.__signature__ = signature.replace(parameters=[message_parameter, *parameters])  # type: ignore[attr-defined]
    return run_once


class InboxListenerRegistry(ListenerRegistry):
    """The project bus's listeners: ``listen()``'s ``inbox`` also takes a Django database
    alias (see ``inbox_handler``); a SQLAlchemy engine still gives the core inbox."""

    def add(self, events: Any, handler: Callable[..., Any], *, listener_name: Any,
            inbox: Any = None, **options: Any) -> Listener:
        if isinstance(inbox, str) and listener_name is not None:
            group = f"{self._service_name}-{listener_name}"
            handler = inbox_handler(handler, list(events), inbox, group)
            inbox = None
        if inbox is not None:  # a SQLAlchemy engine: the core inbox
            options["inbox"] = inbox
        return super().add(events, handler, listener_name=listener_name, **options)
