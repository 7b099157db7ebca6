"""A bus module for ``lightbus-sync run --redis-url redis+cluster://...`` in tests: one
listener (``jobs``) over the three ``clusterrt`` APIs (three shards). Handlers record
into a single Redis (``RECORD_URL``, not the cluster) ``n|label|delivery`` on the lists
``started`` and ``seen``; ``HANDLER_MODE=block`` sleeps for an hour after ``started``
(to be killed)."""

import os
import time

import redis

import lightbus_sync
from cluster_api import SHARD_APIS  # noqa: F401  (defines the APIs)

bus = lightbus_sync.create(service_name=os.environ.get("TEST_SERVICE", "clrt"))
record = redis.Redis.from_url(os.environ["RECORD_URL"])
LABEL = os.environ.get("TEST_LABEL", str(os.getpid()))
MODE = os.environ.get("HANDLER_MODE", "record")


def handle(event_message, n, sleep):
    line = f"{event_message.api_name}|{n}|{LABEL}|{event_message.delivery_count}"
    record.rpush("started", line)
    if MODE == "block":
        time.sleep(3600)
    record.rpush("seen", line)


def before_server_start():
    bus.listen_many([bus.api(name).job for name in SHARD_APIS], handle, listener_name="jobs")
