"""Database URLs for the outbox: checking them, hiding their passwords, making engines."""

from __future__ import annotations

from typing import Any

#: A relay's transaction left idle this long (its process gone) is ended by PostgreSQL,
#: which frees the rows it had claimed. It must stay well under ``bus.outbox.dedup_ttl``.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000


def _require_sqlalchemy() -> Any:
    try:
        import sqlalchemy
    except ImportError:  # pragma: no cover
        raise ImportError("the outbox needs SQLAlchemy 2: pip install 'lightbus_sync[sql]'") from None
    return sqlalchemy


def check_database_url(value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a SQLAlchemy database URL string."""
    if not isinstance(value, str) or "://" not in value and not value.startswith("sqlite:"):
        raise ValueError(
            f"expected a SQLAlchemy database URL such as 'postgresql+psycopg://user@host/db' or "
            f"'sqlite:///app.db', got {safe_url(value) if isinstance(value, str) else repr(value)}"
        )
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # checked again when the relay starts, with the install hint
        return
    try:
        make_url(value)
    except Exception as exc:
        raise ValueError(f"not a SQLAlchemy database URL ({type(exc).__name__}): {safe_url(value)}") from None


def safe_url(url: Any) -> str:
    """``url`` (a string, URL or Engine) for logs and errors: its password, and any query
    parameter whose name has ``password`` in it (``sslpassword``...), replaced by ``***``."""
    target = getattr(url, "url", url)  # an Engine
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(target)
        secret = {key: "***" for key in parsed.query if "password" in key.lower()}
        if secret:
            parsed = parsed.update_query_dict(secret)
        return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except Exception:
        text = str(target)
        scheme, sep, rest = text.partition("://")
        if sep and "@" in rest:
            credentials, _, host = rest.rpartition("@")
            user = credentials.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}" if ":" in credentials else text
        return text


def relay_engine(url: Any) -> Any:
    """An Engine for a relay on ``url`` (an Engine is returned as is): SQLite waits up to
    30 s for a lock (unless the URL has ``?timeout=``); PostgreSQL ends a relay's idle
    transaction after ``IDLE_IN_TRANSACTION_TIMEOUT_MS`` (a relay that vanished
    mid-claim), added to the URL's own ``?options=``."""
    sqlalchemy = _require_sqlalchemy()
    if isinstance(url, sqlalchemy.engine.Engine):
        return url
    check_database_url(str(url) if not isinstance(url, str) else url)
    parsed = sqlalchemy.engine.make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if "timeout" not in parsed.query:  # the URL's own ?timeout= wins
            options["connect_args"] = {"timeout": 30}
    elif parsed.get_backend_name() == "postgresql":
        idle = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
        given = parsed.query.get("options")  # the URL's ?options= are kept, before ours
        options["connect_args"] = {"options": f"{given} {idle}" if isinstance(given, str) and given else idle}
    return sqlalchemy.create_engine(parsed, **options)
