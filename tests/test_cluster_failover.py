"""A Redis Cluster changing under a running runner while events are fired: a shard's
master killed -9 (its replica promoted), a manual failover, and a slot holding a stream
migrated to another master (ASK, then MOVED). Every event fired is handled at least once
and nothing is left pending."""

from __future__ import annotations

import collections
import threading
import time

import pytest
import redis

import lightbus_sync
from runner_apps.cluster_api import SHARD_APIS
from runner_apps.harness import fast_config, wait_until

STREAMS = list(SHARD_APIS.values())
NAMES = list(SHARD_APIS)


class Firer(threading.Thread):
    """Fires ``count`` events round-robin over the three APIs (n = 0..count-1), with a
    short pause between them; ``hold`` keeps it from firing (it finishes the fire in
    progress first)."""

    def __init__(self, bus: lightbus_sync.Bus, count: int, pause: float = 0.005) -> None:
        super().__init__(name="firer", daemon=True)
        self.bus, self.count, self.pause = bus, count, pause
        self.fired: list[tuple[str, int]] = []
        self.error: BaseException | None = None
        self.hold = threading.Lock()

    def run(self) -> None:
        try:
            for n in range(self.count):
                name = NAMES[n % len(NAMES)]
                with self.hold:
                    self.bus.api(name).job.fire(n=n)
                self.fired.append((name, n))
                time.sleep(self.pause)
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.fixture
def buses(cluster_url):
    config = fast_config({"consumption_restart_delay": 0.5, "socket_timeout": 2})
    config["apis"]["default"]["event_fire_timeout"] = 30
    made = [lightbus_sync.create(redis_url=cluster_url, service_name=service, process_name=service,
                                 config=config) for service in ("clfo", "producer")]
    yield made
    for bus in made:
        bus.close()


def listen(bus: lightbus_sync.Bus) -> collections.Counter:
    handled: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def handle(event_message, n, sleep):
        with lock:
            handled[(event_message.api_name, n)] += 1

    bus.listen_many([bus.api(name).job for name in NAMES], handle, listener_name="jobs")
    return handled


def settle(firer: Firer, handled: collections.Counter, client, timeout: float = 40) -> None:
    firer.join(timeout)
    assert not firer.is_alive(), "the firer did not finish"
    assert firer.error is None, f"fire() failed: {firer.error!r}"
    wanted = set(firer.fired)
    wait_until(lambda: wanted <= set(handled), timeout, what="every fired event handled")
    wait_until(lambda: all(_pending(client, s) == 0 for s in STREAMS), 15, what="nothing pending")


def _redirections(redis_cluster, port: int) -> int:
    """ASK and MOVED replies a node has sent (``INFO errorstats``, Redis 6.2+)."""
    with redis_cluster.node_client(port) as node:
        stats = node.info("errorstats")
    return sum(stats.get(f"errorstat_{kind}", {}).get("count", 0) for kind in ("ASK", "MOVED"))


def _pending(client, stream: str) -> int:
    try:
        return int(client.xpending(stream, "clfo-jobs")["pending"])
    except (redis.ConnectionError, redis.ResponseError):
        return -1


@pytest.mark.parametrize("kill", [True, False], ids=["kill-9-master", "manual-failover"])
def test_a_shard_fails_over_while_events_flow(redis_cluster, cluster_client, buses, kill):
    consumer_bus, producer = buses
    handled = listen(consumer_bus)
    victim = redis_cluster.master_of_key(SHARD_APIS["clusterrt.api0"])
    with consumer_bus.listening() as runner:
        assert runner.wait_until_ready(10)
        firer = Firer(producer, 240)
        firer.start()
        wait_until(lambda: len(handled) >= 60, 20, what="events flowing")
        # Writes acknowledged by a master can be lost in a failover (replication is
        # asynchronous): let the replica catch up with what has been fired so far,
        # then kill the master and fire on at once (fire() retries until the replica
        # is promoted).
        firer.hold.acquire()
        with redis_cluster.node_client(victim) as master:
            master.execute_command("WAIT", 1, 5000)
        before = len(handled)
        new_master = redis_cluster.failover(victim, kill=kill, on_killed=firer.hold.release)
        if not kill:
            firer.hold.release()
        assert new_master != victim
        assert redis_cluster.master_of_key(SHARD_APIS["clusterrt.api0"]) == new_master
        settle(firer, handled, cluster_client)
    assert len(handled) > before
    assert set(handled) >= set(firer.fired) and len(firer.fired) == 240
    assert runner.stats.get("dead_lettered") == 0
    after = [n for (name, n) in firer.fired[firer.fired.index(("clusterrt.api0", (before // 3) * 3)):]
             if name == "clusterrt.api0"]
    assert after and all(handled[("clusterrt.api0", n)] >= 1 for n in after)


def test_a_streams_slot_migrates_to_another_master_while_the_runner_reads_it(
        redis_cluster, cluster_client, buses):
    """The slot of one stream (with its helper keys and 30 filler keys of the same slot)
    moves to another master one key at a time, as ``redis-cli --cluster reshard`` does,
    while events are fired and handled: commands meet ASK during the move and MOVED
    after it; redis-py follows them, and the runner goes on."""
    consumer_bus, producer = buses
    handled = listen(consumer_bus)
    stream = SHARD_APIS["clusterrt.api3"]
    slot = redis_cluster.key_slot(stream)
    source = redis_cluster.master_of_slot(slot)
    target = next(port for port in redis_cluster.masters() if port != source)
    for index in range(30):
        cluster_client.set("{" + stream + "}:filler" + str(index), "x")
    try:
        with consumer_bus.listening() as runner:
            assert runner.wait_until_ready(10)
            firer = Firer(producer, 240, pause=0.01)
            firer.start()
            wait_until(lambda: len(handled) >= 30, 20, what="events flowing")
            redirections = _redirections(redis_cluster, source)
            redis_cluster.migrate_slot(slot, target, batch=1, pause_between_keys=0.03)
            assert redis_cluster.master_of_key(stream) == target
            settle(firer, handled, cluster_client)
            # The source replied ASK (key already moved, slot migrating) or MOVED (slot
            # gone) to our clients, which then went on at the target.
            assert _redirections(redis_cluster, source) > redirections
            moved_after = [n for name, n in firer.fired if name == "clusterrt.api3"][-10:]
            assert all(handled[("clusterrt.api3", n)] >= 1 for n in moved_after)
        assert set(handled) >= set(firer.fired)
        with redis_cluster.node_client(target) as node:
            assert node.xlen(stream) == len([1 for name, _ in firer.fired if name == "clusterrt.api3"])
            assert node.xpending(stream, "clfo-jobs")["pending"] == 0
    finally:
        redis_cluster.migrate_slot(slot, source)  # leave the shards as the other tests expect
