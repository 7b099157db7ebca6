"""The outbox on the Django ORM: ``bus.outbox()`` inside ``transaction.atomic()``
writes the event into the outbox table on that database, in that transaction; the relay
(in ``manage.py lightbus_run`` when ``settings.LIGHTBUS_SYNC_OUTBOX`` names the
database) publishes committed rows.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ...errors import ConfigurationError

#: The setting naming the database alias whose outbox ``lightbus_run`` relays.
OUTBOX_SETTING = "LIGHTBUS_SYNC_OUTBOX"


class DjangoOutboxSink:
    """Writes outbox rows with the ORM on the connection of database ``using``, in its
    current ``transaction.atomic()`` block (an ``OutboxSink`` for ``bus.outbox()``).
    ``on_commit(using, event_ids)``, if given, is called when that transaction commits
    (never if it rolls back)."""

    def __init__(self, using: str, on_commit: Optional[Callable[[str, list[str]], None]] = None) -> None:
        self.using = using
        self.on_commit = on_commit

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
        if self.on_commit is not None:
            from django.db import transaction

            callback, using, event_ids = self.on_commit, self.using, [row["event_id"] for row in rows]
            transaction.on_commit(lambda: callback(using, event_ids), using=using)


def relay_to_stand_ins(bus: Any, using: str, event_ids: list[str]) -> None:
    """What the relay does, in tests whose bus has stand-in transports (``in_memory``,
    ``record_events``): the committed rows of ``event_ids`` on database ``using`` are
    written through the bus's current transports (handled, or recorded) and deleted."""
    from django.db import transaction

    from ...outbox.writer import decode_fields
    from .models import OutboxEntry

    with transaction.atomic(using=using):
        rows = list(OutboxEntry.objects.using(using).filter(event_id__in=event_ids).order_by("id"))
        for row in rows:
            bus.transport_for(row.api_name).add_events([(row.stream, decode_fields(row.fields))], None, 0.0)
        OutboxEntry.objects.using(using).filter(pk__in=[row.pk for row in rows]).delete()


#: ``OPTIONS`` keys Django's PostgreSQL backend uses itself (not connection parameters).
_POSTGRESQL_DJANGO_ONLY = frozenset({"isolation_level", "server_side_binding", "pool", "assume_role",
                                     "cursor_factory", "context"})
#: ``OPTIONS`` keys of SQLite that the relay's connection takes (``sqlite3.connect()``'s).
_SQLITE_CARRIED = frozenset({"timeout", "detect_types", "cached_statements"})
#: ``OPTIONS`` keys of SQLite that concern Django's own connection only.
_SQLITE_DJANGO_ONLY = frozenset({"init_command", "transaction_mode", "check_same_thread", "isolation_level"})


def _carried_options(using: str, vendor: str, options: Any) -> dict[str, str]:
    """The ``OPTIONS`` of database ``using`` that the relay's connection takes, as URL
    query values. PostgreSQL: every libpq connection parameter (``sslmode``,
    ``connect_timeout``, ``options``, ``application_name``...), not Django's own keys.
    SQLite: ``timeout``, ``detect_types``, ``cached_statements``; Django's own keys are left
    out, any other is refused. Values must be strings or numbers."""
    where = f"DATABASES[{using!r}][\"OPTIONS\"]"
    if not isinstance(options, dict):
        raise ConfigurationError(f"{where} must be a dict, got {type(options).__name__}")
    carried: dict[str, str] = {}
    for key, value in options.items():
        if vendor == "postgresql" and key in _POSTGRESQL_DJANGO_ONLY:
            continue
        if vendor == "sqlite":
            if key in _SQLITE_DJANGO_ONLY:
                continue
            if key not in _SQLITE_CARRIED:
                raise ConfigurationError(
                    f"{where}[{key!r}]: the outbox relay's SQLite connection cannot take it (it takes "
                    f"{', '.join(sorted(_SQLITE_CARRIED))}); set bus.outbox.url in settings.LIGHTBUS_SYNC instead"
                )
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigurationError(
                f"{where}[{key!r}]: the outbox relay passes it on as a connection parameter, so it must "
                f"be a string or a number; got {type(value).__name__}"
            )
        carried[key] = str(value)
    return carried


def database_url(using: str) -> str:
    """A SQLAlchemy URL for Django's database ``using`` (its current settings: a test
    database's once the test runner has made it), for the relay: PostgreSQL (psycopg 3,
    else psycopg2) and SQLite, with the ``OPTIONS`` its connection takes (see
    ``_carried_options``). Needs no SQLAlchemy (web processes only write rows). It holds
    the password: show it through ``outbox.urls.safe_url``."""
    from urllib.parse import quote, urlencode

    from django.db import connections

    connection = connections[using]
    settings = connection.settings_dict
    options = _carried_options(using, connection.vendor, settings.get("OPTIONS") or {}) \
        if connection.vendor in ("sqlite", "postgresql") else {}
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            raise ConfigurationError(
                f"database {using!r} is an in-memory SQLite database, which no relay can read; use a file"
            )
        return f"sqlite:///{settings['NAME']}" + (f"?{urlencode(options)}" if options else "")
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
        if host.startswith("/"):  # a socket directory
            host, options = "", {**options, "host": settings["HOST"]}
        port = f":{settings['PORT']}" if settings.get("PORT") and host else ""
        name = quote(settings.get("NAME") or "", safe="")
        query = f"?{urlencode(options, quote_via=quote)}" if options else ""
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
