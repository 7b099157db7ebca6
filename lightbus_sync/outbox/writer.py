"""``bus.outbox(session)``: the bus's shape, writing events into the outbox table.

``bus.outbox(session).auth.user_created.fire(...)`` runs the same checks and the same
encoding as ``bus.auth.user_created.fire(...)`` (``EventClient.encode``), then
inserts the entry through ``session`` instead of sending it to Redis. The row commits or
rolls back with the caller's transaction; the relay publishes committed rows. Nothing
here talks to Redis, so the caller's transaction never waits on it.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from ..api import ApiDefinition, EventDefinition
from ..errors import InvalidFireCall, OutboxTransactionError
from ..message import EventMessage
from .tables import outbox_table



_INSERT = outbox_table.insert()


@runtime_checkable
class OutboxSink(Protocol):
    """A writer of outbox rows other than SQLAlchemy (a framework's ORM): it inserts the
    rows into the outbox table in its current transaction, or raises
    ``OutboxTransactionError`` when there is none."""

    def write_outbox_rows(self, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` (the outbox table's columns but ``id``, as ``encode_rows`` gives)."""


def outbox_connection(session: Any) -> Any:
    """The SQLAlchemy ``Connection`` of ``session``'s current transaction (an
    ``OutboxSink`` is returned as it is).

    ``session`` is a ``Session`` (its transaction is begun here if it autobegins, and
    commits with ``session.commit()``) or a ``Connection`` in a transaction. Raises
    ``OutboxTransactionError`` for anything else: an ``Engine``, a connection in
    AUTOCOMMIT mode, a session that may not begin one.
    """
    if isinstance(session, OutboxSink):
        return session
    try:
        from sqlalchemy.engine import Connection, Engine
        from sqlalchemy.orm import Session
    except ImportError:  # pragma: no cover
        raise OutboxTransactionError(
            "bus.outbox() needs SQLAlchemy 2: pip install 'lightbus_sync[sql]'"
        ) from None
    if isinstance(session, Session):
        if not session.in_transaction():
            try:
                connection = session.connection()  # autobegin
            except Exception as exc:
                raise OutboxTransactionError(
                    f"bus.outbox(session): the session is not in a transaction and cannot begin one "
                    f"({exc}); use `with session.begin():`"
                ) from None
        else:
            connection = session.connection()
    elif isinstance(session, Connection):
        if not session.in_transaction():
            raise OutboxTransactionError(
                "bus.outbox(connection): the connection is not in a transaction; use "
                "`with engine.begin() as connection:` or `connection.begin()` first"
            )
        connection = session
    elif isinstance(session, Engine):
        raise OutboxTransactionError(
            "bus.outbox() takes the Session or Connection of your transaction, not an Engine: "
            "`with engine.begin() as connection: bus.outbox(connection)...`"
        )
    else:
        raise OutboxTransactionError(
            f"bus.outbox(session): expected a SQLAlchemy Session or Connection, got "
            f"{type(session).__name__} {session!r}"
        )
    is_autocommit = getattr(connection, "_is_autocommit_isolation", lambda: False)
    if is_autocommit():
        raise OutboxTransactionError(
            "bus.outbox(): the connection is in AUTOCOMMIT mode, so an event would be written "
            "outside any transaction; use a connection with transactions"
        )
    return connection


def encode_fields(fields: Mapping[str, str]) -> str:
    """An entry's fields as the outbox stores them: a JSON array ``[name, value, ...]``
    in wire order (the relay's script hands it to ``XADD`` as it is)."""
    flat: list[str] = []
    for name, value in fields.items():
        flat += (name, value)
    return json.dumps(flat, separators=(",", ":"))


def decode_fields(stored: str) -> dict[str, str]:
    """The inverse of ``encode_fields``: the entry's fields, in wire order."""
    flat = json.loads(stored)
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def encode_rows(rows: Sequence[tuple[str, str, str, Mapping[str, str]]]) -> list[dict[str, Any]]:
    """(api name, stream, event id, fields) as the outbox table's values (``id`` aside)."""
    now = time.time()
    return [
        {"api_name": api, "stream": stream, "event_id": event_id, "fields": encode_fields(fields), "created_at": now}
        for api, stream, event_id, fields in rows
    ]


def write_entries(connection: Any, rows: Sequence[tuple[str, str, str, Mapping[str, str]]]) -> None:
    """Insert (api name, stream, event id, fields) rows into the outbox on ``connection``
    (a SQLAlchemy ``Connection`` or an ``OutboxSink``)."""
    if isinstance(connection, OutboxSink):
        connection.write_outbox_rows(encode_rows(rows))
    else:
        connection.execute(_INSERT, encode_rows(rows))


class OutboxNamespace:
    """``bus.outbox(session).my_company``: what the bus's object of that name gives
    (``ApiNamespace``, ``ApiClient``, ``Bus``), each attribute wrapped to fire into the outbox."""

    def __init__(self, target: Any, session: Any) -> None:
        self._target = target
        self._session = session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._target!r}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _wrap(getattr(self._target, name), self._session)


class OutboxView(OutboxNamespace):
    """``bus.outbox(session)``: ``.auth``, ``.my_company.auth``, ``.api(name)`` as on the bus."""

    def __init__(self, bus: Any, session: Any) -> None:
        super().__init__(bus, session)

    def api(self, name: str) -> "OutboxApi":
        return OutboxApi(self._target.api(name), self._session)


class OutboxApi(OutboxNamespace):
    """``bus.outbox(session).auth``: gives the API's events as attributes."""

    def __init__(self, client: Any, session: Any) -> None:
        super().__init__(client, session)

    def event(self, name: str) -> "OutboxEvent":
        return OutboxEvent(self._target.event(name), self._session)


class OutboxEvent:
    """``bus.outbox(session).auth.user_created``: ``fire()`` and ``fire_many()`` into the
    outbox. Each returns ``EventMessage`` s whose ``stream_id`` is None (not relayed yet)."""

    def __init__(self, client: Any, session: Any) -> None:
        self._client = client
        self._session = session

    def __repr__(self) -> str:
        return f"<OutboxEvent {self._client.canonical_name}>"

    def fire(self, *args: Any, **kwargs: Any) -> EventMessage:
        """Check the call as ``fire()`` does and insert its entry in the caller's
        transaction. Raises an ``InvalidFireCall`` subclass (nothing written) for a bad
        call, ``OutboxTransactionError`` outside a transaction."""
        connection = outbox_connection(self._session)
        event_id, values, fields = self._client.encode(*args, **kwargs)
        write_entries(connection, [(self._client.definition.api_name, self._client.stream, event_id, fields)])
        return self._message(event_id, values)

    def fire_many(self, calls: Iterable[Mapping[str, Any]]) -> list[EventMessage]:
        """Check every call first (nothing is written if any is bad), then insert them
        all with one statement, in order."""
        connection = outbox_connection(self._session)
        prepared = self._client.encode_many(calls)
        if not prepared:
            return []
        api, stream = self._client.definition.api_name, self._client.stream
        write_entries(connection, [(api, stream, event_id, fields) for event_id, _, fields in prepared])
        return [self._message(event_id, values) for event_id, values, _ in prepared]

    def _message(self, event_id: str, values: Mapping[str, Any]) -> EventMessage:
        definition = self._client.definition
        return EventMessage(
            event_id, definition.api_name, definition.name, definition.version, values, self._client.stream, None
        )


def _wrap(target: Any, session: Any) -> Any:
    """The outbox's counterpart of what the bus gave: an event client (its ``definition``
    is an event's), an API client (an API's), or a namespace of dotted API names."""
    definition = getattr(target, "definition", None)
    if isinstance(definition, EventDefinition):
        return OutboxEvent(target, session)
    if isinstance(definition, ApiDefinition):
        return OutboxApi(target, session)
    if not callable(target):
        return OutboxNamespace(target, session)
    raise InvalidFireCall(f"bus.outbox(...) gives APIs and events; {target!r} is neither")
