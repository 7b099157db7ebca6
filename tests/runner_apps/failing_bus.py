"""A bus module whose one listener always fails (for the logging tests)."""

import lightbus_sync
from runner_api import RunnerTestApi  # noqa: F401  (defines the API)

bus = lightbus_sync.create(service_name="logs")


def always_fails(n, sleep):
    raise ValueError(f"cannot handle {n}")


def before_server_start():
    bus.runner_test.job.listen(always_fails, listener_name="fails", max_deliveries=1)
