"""A PostgreSQL database for the outbox cases: one fresh database for the run (the
server as in the suite: $LIGHTBUS_TEST_POSTGRES_URL, 127.0.0.1:5432, or a private one),
with the outbox tables and the cases' own table, dropped at exit."""

from __future__ import annotations

import atexit
import contextlib
from typing import Any

_STACK = contextlib.ExitStack()
atexit.register(_STACK.close)
_ENGINE: dict[str, Any] = {}


def database_engine() -> Any:
    """The run's Engine (created on first use)."""
    if "engine" not in _ENGINE:
        import sqlalchemy as sa

        from lightbus_sync.outbox import create_tables
        from lightbus_sync.testing.postgres import fresh_database, postgres_server

        server = _STACK.enter_context(postgres_server())
        url = _STACK.enter_context(fresh_database(server, prefix="lightbus_bench"))
        engine = sa.create_engine(url, pool_size=10)
        _STACK.callback(engine.dispose)
        create_tables(engine)
        _ENGINE["engine"] = engine
    return _ENGINE["engine"]


def empty_outbox(engine: Any) -> None:
    import sqlalchemy as sa

    with engine.begin() as connection:
        connection.execute(sa.text("TRUNCATE lightbus_outbox, lightbus_inbox"))
