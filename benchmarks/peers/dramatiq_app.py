"""Dramatiq 2.x side (imported only in the Dramatiq virtualenv): the Redis broker, the
no-op actor, and, in a worker started by ``benchmarks.peers.dramatiq_2``, a middleware
that notes when the handler ran.

``BENCH_REDIS_URL`` must be set: the benchmark's private Redis (never a default).

The actor ``user_created(username, email, is_admin)`` does nothing, on queue
``lightbus_sync_bench``, with Dramatiq's default options and default middleware.
In a worker whose environment has ``BENCH_DRAMATIQ_N`` and ``BENCH_DRAMATIQ_RESULT``,
``Noted`` records ``time.perf_counter()`` and ``time.process_time()`` (the worker
process's CPU, all threads) after the 1st and the N-th message processed, and then
writes them, as JSON, to the file ``BENCH_DRAMATIQ_RESULT``.
"""

import itertools
import json
import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

QUEUE = "lightbus_sync_bench"

_url = os.environ.get("BENCH_REDIS_URL")
if not _url:
    raise RuntimeError("BENCH_REDIS_URL is not set: refusing to guess a Redis (the machine's 6379 is not ours)")
broker = RedisBroker(url=_url)


class Noted(Middleware):
    def __init__(self, n: int, path: str) -> None:
        self.n = n
        self.path = path
        self.count = itertools.count(1)
        self.first = None

    def after_process_message(self, broker, message, *, result=None, exception=None):
        i = next(self.count)  # atomic under the GIL: 8 worker threads call this
        if i == 1:
            self.first = (time.perf_counter(), time.process_time())
        elif i == self.n:
            now, cpu = time.perf_counter(), time.process_time()
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"first_t": self.first[0], "first_cpu": self.first[1], "last_t": now, "last_cpu": cpu,
                           "n": self.n, "errors": exception is not None}, f)
            os.replace(tmp, self.path)


if os.environ.get("BENCH_DRAMATIQ_RESULT"):
    broker.add_middleware(Noted(int(os.environ["BENCH_DRAMATIQ_N"]), os.environ["BENCH_DRAMATIQ_RESULT"]))

dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
def user_created(username, email, is_admin=False):
    pass
