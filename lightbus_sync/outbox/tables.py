"""The outbox's tables (SQLAlchemy Core), ``create_tables()`` and the DDL they need.

``lightbus_outbox`` holds one row per event fired through ``bus.outbox(session)`` and
not yet relayed: the API, the stream key, the event id and the encoded entry (the wire
fields, as a JSON object). Rows are relayed in ``id`` order per stream, so the primary
key serves the "oldest rows first" scan and ``(stream, id)`` the per-stream claim.

On PostgreSQL a statement trigger sends ``NOTIFY lightbus_outbox`` with every insert;
PostgreSQL delivers it at commit, which wakes the relays (polling is the fallback).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

#: The channel the PostgreSQL trigger notifies and the relays listen to.
NOTIFY_CHANNEL = "lightbus_outbox"

metadata = sa.MetaData()

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

outbox_table = sa.Table(
    "lightbus_outbox",
    metadata,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("api_name", sa.String(255), nullable=False),
    sa.Column("stream", sa.String(255), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("fields", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Float(precision=53), nullable=False),  # seconds since the epoch
    sa.Index("lightbus_outbox_stream_id", "stream", "id"),
)

#: Where no row locks serve (SQLite), one relay at a time holds this lease.
lease_table = sa.Table(
    "lightbus_outbox_lease",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("expires_at", sa.Float(precision=53), nullable=False),  # seconds since the epoch
)

#: One row per (listener's consumer group, event id) whose handler committed. Its entry
#: (``stream``, ``stream_id``) tells the purge whether it can still be redelivered.
inbox_table = sa.Table(
    "lightbus_inbox",
    metadata,
    sa.Column("listener_group", sa.String(255), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("stream", sa.String(255), nullable=False),
    sa.Column("stream_id", sa.String(64), nullable=False),
    sa.Column("handled_at", sa.Float(precision=53), nullable=False),  # seconds since the epoch
    sa.Index("lightbus_inbox_handled_at", "handled_at"),
)

_PG_TRIGGER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION lightbus_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
_PG_TRIGGER_DROP = "DROP TRIGGER IF EXISTS lightbus_outbox_notify ON lightbus_outbox"
_PG_TRIGGER = (
    "CREATE TRIGGER lightbus_outbox_notify AFTER INSERT ON lightbus_outbox "
    "FOR EACH STATEMENT EXECUTE FUNCTION lightbus_outbox_notify()"
)


def create_tables(engine: Any) -> None:
    """Create the outbox and inbox tables (and, on PostgreSQL, the notify trigger) if
    they do not exist. Idempotent; safe to call at every start."""
    metadata.create_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            # One creator at a time (create_all's checks and CREATE are not atomic).
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7395, 1)"))
            connection.execute(sa.text(_PG_TRIGGER_FUNCTION))
            connection.execute(sa.text(_PG_TRIGGER_DROP))
            connection.execute(sa.text(_PG_TRIGGER))


def ddl(dialect_name: str) -> str:
    """The SQL ``create_tables()`` runs on ``dialect_name`` (``postgresql``, ``sqlite``...),
    for migrations written by hand (Alembic's ``op.execute``)."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = _dialect(dialect_name)
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    if dialect_name == "postgresql":
        statements += [_PG_TRIGGER_FUNCTION.strip(), _PG_TRIGGER]
    return ";\n\n".join(statements) + ";\n"


def _dialect(name: str) -> Any:
    from sqlalchemy.dialects import registry

    return registry.load(name)()
