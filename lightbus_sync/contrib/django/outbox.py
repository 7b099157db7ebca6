"""The outbox on the Django ORM: ``bus.outbox()`` inside ``transaction.atomic()``
writes the event into the outbox table on that database, in that transaction; the relay
(in ``manage.py lightbus_run`` when ``settings.LIGHTBUS_SYNC_OUTBOX`` names the
database) publishes committed rows.
"""

from __future__ import annotations

from typing import Any, Optional

from ...errors import ConfigurationError

#: The setting naming the database alias whose outbox ``lightbus_run`` relays.
OUTBOX_SETTING = "LIGHTBUS_SYNC_OUTBOX"


class DjangoOutboxSink:
    """Writes outbox rows with the ORM on the connection of database ``using``, in its
    current ``transaction.atomic()`` block (an ``OutboxSink`` for ``bus.outbox()``)."""

    def __init__(self, using: str) -> None:
        self.using = using

    def __repr__(self) -> str:
        return f"<DjangoOutboxSink using={self.using!r}>"

    def write_outbox_rows(self, rows: list[dict[str, Any]]) -> None:
        from django.db import connections

        from ...errors import OutboxTransactionError
        from .models import OutboxEntry

        if not connections[self.using].in_atomic_block:
            raise OutboxTransactionError(
                f"bus.outbox(using={self.using!r}) outside a transaction: the event would be "
                f"committed on its own; fire inside `with transaction.atomic(using={self.using!r}):`"
            )
        OutboxEntry.objects.using(self.using).bulk_create([OutboxEntry(**row) for row in rows])


def database_url(using: str) -> str:
    """A SQLAlchemy URL for Django's database ``using`` (its current settings: a test
    database's once the test runner has made it), for the relay: PostgreSQL (psycopg 3,
    else psycopg2) and SQLite. ``OPTIONS`` are not carried over. Needs no SQLAlchemy
    (web processes only write rows)."""
    from urllib.parse import quote, urlencode

    from django.db import connections

    connection = connections[using]
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            raise ConfigurationError(
                f"database {using!r} is an in-memory SQLite database, which no relay can read; use a file"
            )
        return f"sqlite:///{settings['NAME']}"
    if connection.vendor == "postgresql":
        try:
            import psycopg  # noqa: F401

            driver = "psycopg"
        except ImportError:
            driver = "psycopg2"
        user = quote(settings.get("USER") or "", safe="")
        password = quote(settings.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings.get("HOST") or ""
        query = ""
        if host.startswith("/"):  # a socket directory
            host, query = "", "?" + urlencode({"host": settings["HOST"]})
        port = f":{settings['PORT']}" if settings.get("PORT") and host else ""
        name = quote(settings.get("NAME") or "", safe="")
        return f"postgresql+{driver}://{credentials}{host}{port}/{name}{query}"
    raise ConfigurationError(
        f"settings.{OUTBOX_SETTING}: database {using!r} is {connection.vendor}; the outbox relay "
        f"supports PostgreSQL and SQLite"
    )


def relayed_alias(settings: Any) -> Optional[str]:
    """``settings.LIGHTBUS_SYNC_OUTBOX``: the alias of a database in ``DATABASES``, or None."""
    alias = getattr(settings, OUTBOX_SETTING, None)
    if alias is None:
        return None
    if not isinstance(alias, str) or alias not in settings.DATABASES:
        raise ConfigurationError(
            f"settings.{OUTBOX_SETTING} must name a database of settings.DATABASES "
            f"({', '.join(map(repr, settings.DATABASES))}), got {alias!r}"
        )
    return alias
