"""The transactional outbox: ``bus.outbox(session)`` writes events into a table in the
caller's transaction; a relay publishes committed rows to Redis.

Needs ``pip install 'lightbus_sync[sql]'`` (SQLAlchemy 2; psycopg 3 for PostgreSQL).
"""

from .backlog import OutboxBacklog, outbox_backlog
from .relay import OutboxRelay, relay_for_bus
from .tables import create_tables, ddl
from .writer import OutboxTransactionError, OutboxView

__all__ = [
    "OutboxBacklog",
    "OutboxRelay",
    "OutboxTransactionError",
    "OutboxView",
    "create_tables",
    "ddl",
    "outbox_backlog",
    "relay_for_bus",
]
