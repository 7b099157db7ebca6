"""A bus module that takes a while to import: it marks ``importing`` in the test's Redis,
then sleeps ``IMPORT_SLEEP`` seconds (default 3) before defining the recording bus."""

import os
import time

import redis

redis.Redis.from_url(os.environ["TEST_REDIS_URL"]).set("importing", os.getpid())
time.sleep(float(os.environ.get("IMPORT_SLEEP", "3")))

from recording_bus import before_server_start, bus  # noqa: E402,F401  (the bus and its listeners)
