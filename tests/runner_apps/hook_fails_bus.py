"""A bus module whose before_server_start() raises: ``lightbus-sync run`` exits 3 with
the traceback."""

import lightbus_sync
from runner_api import RunnerTestApi  # noqa: F401

bus = lightbus_sync.create(service_name="hook_fails")


def before_server_start():
    raise KeyError("settings missing in before_server_start")
