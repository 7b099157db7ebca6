"""The outbox's backlog: rows waiting to be relayed, and the age of the oldest."""

from __future__ import annotations

import time
from typing import Any, Optional

import attrs
import sqlalchemy as sa

from .tables import outbox_table
from .urls import safe_url


@attrs.frozen
class OutboxBacklog:
    database: str  # the URL, password hidden
    rows: int
    oldest_age: Optional[float]  # seconds since the oldest waiting row was written; None if empty

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def outbox_backlog(engine: Any) -> OutboxBacklog:
    """Count the rows in the outbox (one query)."""
    with engine.connect() as connection:
        rows, oldest = connection.execute(
            sa.select(sa.func.count(), sa.func.min(outbox_table.c.created_at)).select_from(outbox_table)
        ).one()
    age = None if oldest is None else max(time.time() - oldest, 0.0)
    return OutboxBacklog(safe_url(engine), int(rows), age)


def configured_backlog(config: Any) -> Optional[OutboxBacklog]:
    """The backlog of ``bus.outbox.url`` if configured (None otherwise). A database that
    does not answer raises ``ValueError`` naming it (password hidden)."""
    url = config.bus.outbox.url
    if url is None:
        return None
    from .urls import relay_engine

    engine = relay_engine(url)
    try:
        return outbox_backlog(engine)
    except Exception as exc:
        raise ValueError(
            f"cannot count the outbox in {safe_url(url)}: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from None
    finally:
        engine.dispose()


def render_backlog(backlog: OutboxBacklog) -> str:
    """One line for ``lightbus-sync status``."""
    if not backlog.rows:
        return f"outbox {backlog.database}: empty"
    from ..ops.formatting import duration

    return f"outbox {backlog.database}: {backlog.rows} row(s) waiting, the oldest for {duration(backlog.oldest_age)}"
