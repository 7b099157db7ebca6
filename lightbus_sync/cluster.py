"""Redis Cluster support: the client behind a ``redis+cluster://`` URL, and key slots.

A stream is one key, so it lives in one hash slot, on one shard. Every command the
library sends names keys of one slot only: a listener's streams on different slots are
read by separate XREADGROUPs (``group_by_slot``), Lua scripts name every key in KEYS
and their helper keys share the stream's slot through a hash tag
(``{<stream>}:dead``, ``{<stream>}:attempts``, ``{<stream>}:replay:<group>``), and the
schema keys are read with one GET per slot (``MGET`` across slots fails on a cluster).

The client is redis-py's ``redis.cluster.RedisCluster`` (startup nodes from the URL),
with these differences:

- it is made on first use, not when the transport is created: a cluster that cannot
  be reached then raises ``redis.ConnectionError`` (retried like any connection
  failure) from the command that needed it, instead of failing ``create()``;
- redis-py's own retries are off (``Retry(NoBackoff(), 0)``), as for a single Redis:
  callers retry within their deadline. redis-py still follows MOVED and ASK
  redirections and TRYAGAIN itself, and refreshes its slot map after a connection
  failure or CLUSTERDOWN before it raises;
- a slot map that cannot be refreshed (no node answers, nodes disagree in the middle
  of a reshard) raises ``redis.ConnectionError`` instead of redis-py's
  ``RedisClusterException``, so that it counts as transient too;
- replies to ``XAUTOCLAIM``, ``XRANGE`` and ``XREVRANGE`` are left raw (the transport
  parses them itself: Redis 6.2's nil entries, duplicate field names, field order).
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Optional

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.connection import Encoder  # type: ignore[attr-defined]  # re-exported, not declared
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, SlotNotCoveredError

from .errors import TransportError
from .redis_url import parse_cluster_url, redact

#: Commands whose replies the transport parses itself (see the module doc).
RAW_REPLY_COMMANDS = ("XAUTOCLAIM", "XRANGE", "XREVRANGE")


def _raw(response: Any, **options: Any) -> Any:
    return response


def slot_of(key: str) -> int:
    """The hash slot (0-16383) of ``key``, honouring ``{hash tags}``."""
    return key_slot(key.encode())


def group_by_slot(keys: Iterable[str]) -> list[list[str]]:
    """``keys`` split into lists of one hash slot each (in first-seen order)."""
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(slot_of(key), []).append(key)
    return list(groups.values())


class _ClusterClient(RedisCluster):
    """``RedisCluster`` with raw replies for ``RAW_REPLY_COMMANDS`` and slot-map refresh
    failures raised as ``redis.ConnectionError`` (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.nodes_manager
        initialize = manager.initialize

        def initialize_or_connection_error(*a: Any, **k: Any) -> Any:
            try:
                return initialize(*a, **k)
            except RedisClusterException as exc:
                raise _as_connection_error(exc) from exc

        # Pipelines share this manager, so its method is replaced, not wrapped per call.
        manager.initialize = initialize_or_connection_error  # type: ignore[method-assign]

    def get_redis_connection(self, node: ClusterNode) -> redis.Redis:
        connection = super().get_redis_connection(node)
        if not getattr(connection, "_lightbus_raw_replies", False):
            for command in RAW_REPLY_COMMANDS:
                connection.set_response_callback(command, _raw)
            connection._lightbus_raw_replies = True  # type: ignore[attr-defined]
        return connection


def _as_connection_error(exc: RedisClusterException) -> BaseException:
    """A failed slot-map refresh as ``redis.ConnectionError`` (transient), except a node
    that is not in cluster mode (a wrong URL: no retry helps)."""
    if isinstance(exc, SlotNotCoveredError):
        return exc
    if "Cluster mode is not enabled" in str(exc):
        return TransportError(
            f"a node given in the Redis Cluster URL is not in cluster mode ({exc}): use redis://host:port/0 "
            f"for a single Redis"
        )
    return redis.ConnectionError(f"Redis Cluster unavailable: {exc}")


class LazyClusterClient:
    """A ``redis.cluster.RedisCluster`` for a ``redis+cluster://`` URL, made on first
    use (thread-safe); every attribute but ``register_script``, ``get_encoder`` and
    ``close`` is the real client's. Creating it contacts the cluster; failing to raises
    ``redis.ConnectionError`` and the next use tries again."""

    is_cluster = True

    def __init__(self, url: str, **options: Any) -> None:
        nodes, url_options = parse_cluster_url(url)
        options.pop("db", None)
        self._url = url
        self._startup_nodes = nodes
        self._options = {**options, **url_options}
        self._client: Optional[_ClusterClient] = None
        self._lock = threading.Lock()
        self._encoder = Encoder(
            options.get("encoding", "utf-8"), options.get("encoding_errors", "strict"),
            options.get("decode_responses", False),
        )

    def __repr__(self) -> str:
        return f"<LazyClusterClient {redact(self._url)} {'connected' if self._client else 'not yet connected'}>"

    def real(self) -> _ClusterClient:
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    options = dict(self._options)
                    retry = options.pop("retry", None)
                    try:
                        client = _ClusterClient(
                            startup_nodes=[ClusterNode(host, port) for host, port in self._startup_nodes],
                            retry=retry, **options,
                        )
                    except RedisClusterException as exc:
                        raise _as_connection_error(exc) from exc
                    self._client = client
        return client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.real(), name)

    def get_encoder(self) -> Encoder:
        return self._encoder

    def register_script(self, script: str) -> Script:
        """A Lua script object (no connection needed: its SHA is computed locally)."""
        return Script(self, script)  # type: ignore[arg-type]  # a stand-in for the client it makes

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def is_cluster_client(client: Any) -> bool:
    return isinstance(client, (LazyClusterClient, RedisCluster))
