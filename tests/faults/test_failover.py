"""Failover under load: a real primary, two replicas and three sentinels (short
timeouts: a failover takes a few seconds), a producer firing through a
``redis+sentinel://`` URL, and two ``lightbus-sync run`` processes consuming through it.
Producers and runners follow each failover with no restart.

Each scenario records fired (fire() calls), confirmed (those that returned: with
``min_replicas: 1`` a replica held the entry), handled, lost (confirmed but never
handled), duplicates and the failover time (from the fault to the sentinels naming a
new primary that has taken the role), and checks lost == 0 for confirmed events, and
nothing left pending. The one exception is the ``min_replicas: 0`` run of the
"replicas stopped" scenario, which shows what asynchronous replication loses.
"""

from __future__ import annotations

import threading
import time

import pytest

from lightbus_sync.testing.redis_sentinel import SentinelAuth, SentinelDeployment
from lightbus_sync.testing.tls import make_tls_files

from .harness import FAILOVER_RESULTS, FailoverResult, Producer, Runners, dead_seqs, pending_count, wait_for

pytestmark = pytest.mark.timeout(180)

CONFIRMED = {"min_replicas": 1, "min_replicas_timeout": 1}


@pytest.fixture
def deployment(request, tmp_path):
    """A fresh deployment; ``request.param`` (indirect) may give keyword arguments
    (``tls=True``: with throwaway certificates)."""
    options = dict(getattr(request, "param", {}))
    if options.pop("tls", False):
        options["tls"] = make_tls_files(tmp_path / "tls")
    with SentinelDeployment(directory=tmp_path / "redis", **options) as deployment:
        yield deployment


def _settle(runners: Runners, deployment: SentinelDeployment, expected: set[int], timeout: float) -> None:
    """Wait until every expected seq is handled and nothing is pending on the primary."""
    def done() -> bool:
        try:
            with deployment.client() as client:
                handled = runners.handled()
                return all(handled[s] for s in expected) and pending_count(client) == 0
        except Exception:  # between primaries
            return False

    wait_for(done, timeout, interval=0.25)


def _account(name: str, producer: Producer, runners: Runners, deployment: SentinelDeployment,
             failover_seconds) -> FailoverResult:
    handled = runners.handled()
    confirmed = set(producer.fired)
    with deployment.client() as client:
        dead = dead_seqs(client)
        pending = pending_count(client)
    result = FailoverResult(
        name=name,
        fired=len(producer.fired) + len(producer.failed),
        confirmed=len(confirmed),
        handled=sum(1 for seq in handled if handled[seq] > 0),
        lost=sum(1 for seq in confirmed if handled[seq] == 0 and seq not in dead),
        duplicates=sum(count - 1 for count in handled.values() if count > 1),
        failover_seconds=failover_seconds,
        pending_left=pending,
    )
    FAILOVER_RESULTS.append(result)
    return result


def _run_through_a_fault(deployment, tmp_path, name, fault, *, rate=300, count=1500, before=1.5):
    """Two runners and a producer (min_replicas 1) through ``fault()`` (which returns the
    failover time, or None); then every confirmed event must be handled."""
    runners = Runners(deployment, tmp_path, count=2).start()
    producer = Producer(deployment.url, rate=rate, redis_settings=CONFIRMED).start(0, count)
    time.sleep(before)
    failover_seconds = fault()
    producer.join(timeout=150)
    _settle(runners, deployment, set(producer.fired), timeout=60)
    codes = runners.stop()
    result = _account(name, producer, runners, deployment, failover_seconds)
    producer.close()
    assert result.lost == 0 and result.pending_left == 0, result
    assert result.confirmed > count / 2, result  # the producer followed the failover
    assert all(code == 0 for code in codes), codes
    return result


def _kill_primary(deployment: SentinelDeployment) -> float:
    """SIGKILL the primary; the seconds until a replica has taken over."""
    old = deployment.primary()
    started = time.monotonic()
    old.kill()
    deployment.wait_for_new_primary(old.port)
    return time.monotonic() - started


def test_primary_killed_under_load(deployment, tmp_path):
    _run_through_a_fault(deployment, tmp_path, "primary SIGKILLed (min_replicas 1)",
                         lambda: _kill_primary(deployment))


ACL_USERS = SentinelAuth("Data-Secret-1", username="app", sentinel_password="Sentinel-Secret-2",
                         sentinel_username="watcher")


@pytest.mark.parametrize("deployment", [{"auth": ACL_USERS}], indirect=True)
def test_primary_killed_under_load_with_acl_users(deployment, tmp_path):
    """The data servers' and the sentinels' default users are off: the producer, the
    runners, the replicas and the sentinels all log in as ACL users, before and after
    the failover."""
    _run_through_a_fault(deployment, tmp_path, "primary SIGKILLed, ACL users (min_replicas 1)",
                         lambda: _kill_primary(deployment))
    for path in tmp_path.glob("runner-*.log"):
        assert "Secret" not in path.read_text()


@pytest.mark.parametrize("deployment", [{"tls": True, "tls_auth_clients": True,
                                         "auth": SentinelAuth("Data-Secret-1", sentinel_password="Sentinel-Secret-2")}],
                         indirect=True)
def test_primary_killed_under_load_over_mutual_tls(deployment, tmp_path):
    _run_through_a_fault(deployment, tmp_path, "primary SIGKILLed, mutual TLS + passwords (min_replicas 1)",
                         lambda: _kill_primary(deployment))


def test_planned_failover_under_load(deployment, tmp_path):
    def sentinel_failover() -> float:
        old = deployment.primary_port()
        started = time.monotonic()
        deployment.failover()
        deployment.wait_for_new_primary(old)
        return time.monotonic() - started

    _run_through_a_fault(deployment, tmp_path, "SENTINEL FAILOVER (min_replicas 1)", sentinel_failover)


def test_one_sentinel_down_the_whole_time(deployment, tmp_path):
    deployment.sentinel_servers[0].kill()  # the first one the URL lists
    _run_through_a_fault(deployment, tmp_path, "one sentinel down + primary SIGKILLed",
                         lambda: _kill_primary(deployment))


@pytest.mark.parametrize("deployment", [{"down_after_ms": 6000}], indirect=True)
def test_client_pause_longer_than_the_socket_timeout(deployment, tmp_path):
    """Clients time out (1 s) and retry while the primary is paused (3 s); the sentinels
    wait longer (6 s) before they call it down, so there is no failover."""
    primary = deployment.primary_port()

    def pause() -> None:
        with deployment.client() as client:
            client.execute_command("CLIENT", "PAUSE", 3000, "WRITE")  # socket timeouts are 1 s
        time.sleep(3.2)
        return None

    _run_through_a_fault(deployment, tmp_path, "CLIENT PAUSE 3 s (> socket timeout)", pause)
    assert deployment.primary_port() == primary  # a pause is not a failover


@pytest.mark.parametrize("min_replicas", [1, 0])
def test_replicas_stopped_then_primary_killed(deployment, tmp_path, min_replicas):
    """The replicas freeze, the producer goes on, the primary dies, a replica that never
    got the latest entries is promoted. With min_replicas 1 no fire() made while the
    replicas were stopped returned success, so nothing confirmed is lost; with 0 those
    entries were confirmed to the producer and are gone. The runners start after the
    failover (consumers catching up a backlog), so what is lost is not handled.

    A stopped process's sockets still take in a few MB (the kernel's buffers), so the
    events fired while the replicas are stopped carry 50 KB each: the replication stream
    outgrows the buffers, as it would with a longer outage."""
    config = {"min_replicas": min_replicas, "min_replicas_timeout": 0.5}
    padded = threading.Event()
    producer = Producer(deployment.url, rate=200, redis_settings=config,
                        modes=lambda seq: "ok" + ("-" * 50_000 if padded.is_set() else "")).start(0, 100_000)
    time.sleep(1.0)
    old = deployment.primary()
    replicas = deployment.replicas()
    for replica in replicas:
        replica.pause(120)
    padded.set()
    stopped_at = time.monotonic()
    time.sleep(1.5)
    killed_at = time.monotonic()
    old.kill()
    time.sleep(0.3)
    for replica in replicas:
        replica.resume()
    deployment.wait_for_new_primary(old.port, timeout=60)
    failover_seconds = time.monotonic() - killed_at
    time.sleep(1.0)
    producer.stop()
    producer.join(timeout=30)
    runners = Runners(deployment, tmp_path, count=2).start()
    _settle(runners, deployment, set(producer.fired), timeout=30)
    codes = runners.stop()
    result = _account(f"replicas SIGSTOPped, primary SIGKILLed (min_replicas {min_replicas})",
                      producer, runners, deployment, failover_seconds)
    producer.close()
    while_stopped = [seq for seq, _, returned_at, ok in producer.calls
                     if ok and stopped_at + 0.2 < returned_at < killed_at]
    assert all(code == 0 for code in codes), codes
    if min_replicas:
        assert while_stopped == [], while_stopped  # no unconfirmed success
        assert result.lost == 0 and result.pending_left == 0, result
    else:
        assert while_stopped, "the producer fired nothing while the replicas were stopped"
        # What min_replicas 0 costs: entries confirmed while the replicas were stopped are gone.
        assert result.lost > 0, result
        assert result.lost <= len(while_stopped) + 2, result
