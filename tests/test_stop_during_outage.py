"""A graceful stop while Redis is down: bounded by the shutdown timeout, and nothing is
lost (unacked entries stay pending and are handled again once Redis is back)."""

from __future__ import annotations

import threading
import time

import pytest

import lightbus_sync
from runner_apps.harness import fast_config, wait_until
from runner_apps.runner_api import RunnerTestApi  # noqa: F401  (defines the API)

STREAM = "runner_test.*:stream"


@pytest.mark.parametrize("fresh_redis_server", [True], indirect=True)  # appendonly: data survives
def test_stop_during_an_outage_is_bounded_and_loses_nothing(fresh_redis_server):
    server = fresh_redis_server
    config = fast_config(redis={"socket_timeout": 0.5, "consumption_restart_delay": 0.2})
    bus = lightbus_sync.create(redis_url=server.url, service_name="outage", process_name="p1", config=config)
    started, finished = [], []
    release = threading.Event()

    def slow(n, sleep):
        started.append(n)
        release.wait(5)
        finished.append(n)

    bus.runner_test.job.listen(slow, listener_name="slow", since="0")
    for n in range(4):
        bus.runner_test.job.fire(n=n)
    runner = bus.start_listener_thread(threads=4, shutdown_timeout=3)
    try:
        assert runner.wait_until_ready(10)
        wait_until(lambda: len(started) == 4, what="all four handlers running")
        server.kill()  # Redis goes away while the handlers run
        release.set()  # they finish, but their acks cannot reach Redis
        began = time.monotonic()
        clean = runner.stop()
        took = time.monotonic() - began
    finally:
        bus.close()
    assert sorted(finished) == [0, 1, 2, 3]
    assert clean is False  # acks not sent: reported, not hidden
    assert took < 3 + 2.5, took  # the shutdown timeout bounds the stop

    server.restart()
    again = []
    bus2 = lightbus_sync.create(redis_url=server.url, service_name="outage", process_name="p1", config=config)
    bus2.runner_test.job.listen(lambda n, sleep: again.append(n), listener_name="slow")
    try:
        with bus2.listening(threads=2) as runner2:
            assert runner2.wait_until_ready(10)
            wait_until(lambda: sorted(again) == [0, 1, 2, 3], what="the unacked events handled again")
            wait_until(lambda: server.client().xpending(STREAM, "outage-slow")["pending"] == 0, what="all acked")
    finally:
        bus2.close()
