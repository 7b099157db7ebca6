"""A bus module for ``lightbus-sync run`` in tests: its handlers record into the test's
Redis what they did, so the test can count.

Environment: ``LISTENERS`` (how many listeners, l0..l<N-1>, default 1), ``HANDLER_MODE``
(``record``; ``block``: sleep for an hour after recording the start, to be killed),
``HANDLER_SLEEP`` (seconds each handler sleeps), ``EXIT_ON`` (the handler of event
``n == EXIT_ON`` kills the process: ``os._exit(17)``), ``MAX_DELIVERIES``, ``TEST_LABEL``
(names this process in the records), ``TEST_REDIS_URL``.

Records (lists): ``started:<listener>`` and ``seen:<listener>`` get ``n|label|delivery``
when a handler starts and when it returns; ``hooks`` gets ``<hook>|label``.
"""

import os
import time

import redis

import lightbus_sync
from runner_api import RunnerTestApi  # noqa: F401  (defines the API)

bus = lightbus_sync.create(service_name=os.environ.get("TEST_SERVICE", "rt"))
record = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
LABEL = os.environ.get("TEST_LABEL", str(os.getpid()))
MODE = os.environ.get("HANDLER_MODE", "record")
SLEEP = float(os.environ.get("HANDLER_SLEEP", "0"))
EXIT_ON = int(os.environ.get("EXIT_ON", "-1"))


def make_handler(listener):
    def handle(event_message, n, sleep):
        line = f"{n}|{LABEL}|{event_message.delivery_count}"
        record.rpush(f"started:{listener}", line)
        if n == EXIT_ON:
            os._exit(17)
        if MODE == "block":
            time.sleep(3600)
        if sleep or SLEEP:
            time.sleep(sleep or SLEEP)
        record.rpush(f"seen:{listener}", line)

    return handle


def before_server_start():
    record.rpush("hooks", f"before_server_start|{LABEL}")
    for index in range(int(os.environ.get("LISTENERS", "1"))):
        bus.runner_test.job.listen(make_handler(f"l{index}"), listener_name=f"l{index}",
                                   max_deliveries=int(os.environ.get("MAX_DELIVERIES", "10")))


@bus.on_start
def started():
    record.rpush("hooks", f"on_start|{LABEL}")


@bus.on_stop
def stopped():
    record.rpush("hooks", f"on_stop|{LABEL}")
