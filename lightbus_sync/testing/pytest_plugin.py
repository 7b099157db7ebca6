"""The lightbus_sync pytest plugin (registered as ``lightbus_sync`` through the
``pytest11`` entry point, so installing the package enables it).

Loading it is cheap: it imports nothing of the package until a fixture runs, so it costs
nothing in a project that has the package installed but does not use these fixtures.
Every fixture name starts with ``lightbus_``:

- ``lightbus_bus``: the bus under test. By default the bus of the bus module
  (``$LIGHTBUS_MODULE``, else ``bus``), as ``lightbus-sync run`` finds it; override it
  in your ``conftest.py`` to return your own bus.
- ``lightbus_recorder``: a started :class:`~lightbus_sync.testing.BusRecorder` on
  ``lightbus_bus`` for the test: fires are recorded, nothing reaches Redis::

      def test_signup(client, lightbus_recorder):
          client.post("/users", data={"username": "adam"})
          lightbus_recorder.assert_fired("auth.user_created", username="adam")

- ``lightbus_in_memory``: ``lightbus_bus`` in memory for the test: an
  :class:`~lightbus_sync.testing.InMemoryBroker` (``fire()`` runs the bus's listeners in
  the test's thread, with the runner's retries and dead letters; nothing reaches Redis)::

      def test_signup_sends_the_welcome_mail(client, lightbus_in_memory):
          client.post("/users", data={"username": "adam"})
          assert outbox == ["adam@example.com"]

- ``lightbus_redis_server``: a private, real ``redis-server`` on a free 127.0.0.1 port
  for the whole session (never the machine's 6379), removed at the end. Its ``url`` is
  ``redis://127.0.0.1:PORT/0``; call ``flushall()`` to start a test from empty.
- ``lightbus_redis_cluster``: a private, real Redis Cluster (3 masters, 3 replicas: six
  ``redis-server`` processes on free 127.0.0.1 ports) for the whole session, formed
  with ``redis-cli --cluster create`` and removed at the end: a
  :class:`~lightbus_sync.testing.redis_cluster.RedisCluster`. Its ``url`` is
  ``redis+cluster://127.0.0.1:P1,...``; ``flushall()`` empties every shard.

The names of earlier releases, ``bus_recorder``, ``redis_server`` and ``redis_cluster``,
still work as deprecated aliases (each use warns).

Every fixture here is a default: a fixture of the same name in a ``conftest.py`` (or a
test module) overrides it, as pytest resolves the closest definition first.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import pytest


@pytest.fixture
def lightbus_bus() -> Any:
    """The bus of the bus module (``$LIGHTBUS_MODULE``, else ``bus``); override to
    return your own."""
    from lightbus_sync.bus_module import import_bus_module

    try:
        _, bus = import_bus_module()
    except ImportError as exc:
        pytest.fail(
            f"lightbus_bus: cannot import the bus module ({exc}); set $LIGHTBUS_MODULE, or define "
            f"a `lightbus_bus` fixture returning your bus in conftest.py",
            pytrace=False,
        )
    return bus


@pytest.fixture
def lightbus_recorder(lightbus_bus: Any) -> Iterator[Any]:
    """Record ``lightbus_bus``'s fires for this test instead of writing them."""
    from lightbus_sync.testing.recorder import BusRecorder

    recorder = BusRecorder(lightbus_bus).start()
    try:
        yield recorder
    finally:
        recorder.stop()


@pytest.fixture
def lightbus_in_memory(lightbus_bus: Any) -> Iterator[Any]:
    """``lightbus_bus``'s events handled in memory for this test (see the module docs)."""
    from lightbus_sync.testing import in_memory  # through the package: its name, not the submodule's

    with in_memory(lightbus_bus) as broker:
        yield broker


@pytest.fixture(scope="session")
def lightbus_redis_server() -> Iterator[Any]:
    """A real, private redis-server for the session (see the module docs)."""
    from lightbus_sync.testing.redis_server import RedisServer, RedisServerNotFound

    try:
        server = RedisServer()
    except RedisServerNotFound as exc:
        pytest.fail(f"lightbus_redis_server: {exc}", pytrace=False)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def lightbus_redis_cluster() -> Iterator[Any]:
    """A real, private Redis Cluster for the session (see the module docs)."""
    from lightbus_sync.testing.redis_cluster import RedisCluster
    from lightbus_sync.testing.redis_server import RedisServerNotFound

    try:
        cluster = RedisCluster()
    except RedisServerNotFound as exc:
        pytest.fail(f"lightbus_redis_cluster: {exc}", pytrace=False)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


# --- deprecated names ---------------------------------------------------------------


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"the {old!r} fixture is deprecated; use {new!r} (the lightbus_sync plugin's fixtures "
        f"are all named lightbus_*)",
        DeprecationWarning,
        stacklevel=2,
    )


@pytest.fixture
def bus_recorder(lightbus_recorder: Any) -> Any:
    """Deprecated alias of ``lightbus_recorder``."""
    _deprecated("bus_recorder", "lightbus_recorder")
    return lightbus_recorder


@pytest.fixture(scope="session")
def redis_server(lightbus_redis_server: Any) -> Any:
    """Deprecated alias of ``lightbus_redis_server``."""
    _deprecated("redis_server", "lightbus_redis_server")
    return lightbus_redis_server


@pytest.fixture(scope="session")
def redis_cluster(lightbus_redis_cluster: Any) -> Any:
    """Deprecated alias of ``lightbus_redis_cluster``."""
    _deprecated("redis_cluster", "lightbus_redis_cluster")
    return lightbus_redis_cluster
