"""Fault injection: real runner processes, a real redis-server, faults injected while events
flow. Each scenario checks that every event fired was handled at least once or is in the
dead-letter stream with its reason (lost == 0), counts duplicates, and that nothing is left
pending. The table of results is printed at the end of the run."""

from __future__ import annotations

import json
import time

import pytest

from lightbus_sync.testing.redis_server import RedisServer

from .harness import STREAM, Producer, Runners, account, dead_letters, wait_for
from .harness import settle as _settle

pytestmark = pytest.mark.timeout(150)


def test_kill_one_of_three_runners_every_second(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=3, env={"FAULT_HANDLER_SLEEP": "0.002"}).start()
    producer = Producer(server.url, rate=700).start(0, 5000)
    kills = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        time.sleep(1)
        runners.kill(kills % 3)
        last_fault = time.monotonic()
        kills += 1
    producer.join()
    recover = _settle(runners, client, set(producer.fired), timeout=60, since=last_fault)
    codes = runners.stop()
    result = account("3 runners, SIGKILL one every 1 s", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover)
    producer.close()
    assert not producer.failed
    assert kills >= 8
    assert result.lost == 0 and result.pending_left == 0, result
    assert all(code == 0 for code in codes), codes


def test_redis_restart_with_aof(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=2).start()
    producer = Producer(server.url, rate=400).start(0, 2000)
    time.sleep(1.5)
    server.stop()
    time.sleep(2)
    server.restart()
    fault_over = time.monotonic()
    producer.join()
    recover = _settle(runners, client, set(producer.fired), timeout=60, since=fault_over)
    runners.stop()
    result = account("Redis stopped + restarted (AOF)", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover, fired=len(producer.fired) + len(producer.failed))
    result.notes = f"{len(producer.failed)} fire() calls raised BusUnavailable"
    producer.close()
    # Every fire() that returned wrote its event: it must be handled. (One that raised
    # may or may not have been written; the producer knew it failed.)
    assert result.lost == 0 and result.pending_left == 0, result


def test_redis_restart_without_persistence_heals_groups(tmp_path):
    with RedisServer(directory=tmp_path / "redis", appendonly=False) as server:
        client = server.client()
        runners = Runners(server, tmp_path, count=2).start()
        producer = Producer(server.url)
        producer.fire_range(0, 300)
        assert wait_for(lambda: len(runners.handled()) >= 300, 30)
        server.kill()
        server.restart()  # empty: the stream and the consumer groups are gone
        restarted = time.monotonic()
        producer.fire_range(300, 1300)
        after = set(range(300, 1300)) & set(producer.fired)
        recover = _settle(runners, client, after, timeout=60, since=restarted)
        runners.stop()
        result = account("Redis restarted empty (fired after it)", after, runners.handled(), server.client(),
                         recover_seconds=recover)
        producer.close()
        assert result.lost == 0 and result.pending_left == 0, result
        assert any(entry["name"] == b"faults-worker" for entry in client.xinfo_groups(STREAM))


def test_redis_paused_longer_than_socket_timeout(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=2).start()
    producer = Producer(server.url, rate=300).start(0, 1500)
    time.sleep(1.5)
    server.pause(3)  # SIGSTOP: every client's socket times out (socket_timeout is 1 s)
    time.sleep(3.2)
    fault_over = time.monotonic()
    producer.join()
    recover = _settle(runners, client, set(producer.fired), timeout=60, since=fault_over)
    runners.stop()
    result = account("Redis paused 3 s (> socket timeout)", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover)
    producer.close()
    assert result.lost == 0 and result.pending_left == 0, result


def test_handlers_failing_30_percent_all_succeed_eventually(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=2, env={
        "FAULT_FAIL_RATE": "0.3", "FAULT_MAX_DELIVERIES": "30", "FAULT_BACKOFF_MIN": "0.05",
        "FAULT_BACKOFF_MAX": "0.3"}).start()
    producer = Producer(server.url)
    producer.fire_range(0, 1000)
    recover = _settle(runners, client, set(producer.fired), timeout=60)
    runners.stop()
    result = account("handlers fail 30% at random", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover)
    producer.close()
    assert result.lost == 0 and result.dead_lettered == 0 and result.pending_left == 0, result


def test_poison_events_end_in_dead_letters_and_the_rest_flow(server, tmp_path):
    client = server.client()
    poison = {100: "always_fail", 200: "exit"}
    runners = Runners(server, tmp_path, count=2, env={"FAULT_MAX_DELIVERIES": "3"}).start()
    producer = Producer(server.url, modes=lambda seq: poison.get(seq, "ok"))
    producer.fire_range(0, 600)
    expected = set(producer.fired) - set(poison)
    recover = _settle(runners, client, set(producer.fired), timeout=90)
    runners.stop()
    result = account("poison: always fails / os._exit", expected, runners.handled(), client,
                     dead_expected=set(poison), recover_seconds=recover)
    producer.close()
    dead = {json.loads(f[b":seq"]): f for f in dead_letters(client)}
    assert set(dead) == set(poison)
    assert dead[100][b"dl:error_type"] == b"RuntimeError"
    # max_deliveries counts handler runs. dl:delivery_count is Redis's delivery count,
    # which also counts deliveries that never ran: a retry claimed by a process that the
    # exit event killed before the retry's turn came.
    assert dead[100][b"dl:reason"] == b"max deliveries reached"
    assert runners.failed_runs()[100] == 3
    assert int(dead[100][b"dl:delivery_count"]) >= 3
    assert int(dead[200][b"dl:delivery_count"]) > 3  # each delivery killed its process
    assert any(code == 17 for _, code in runners.exits)
    assert result.lost == 0 and result.pending_left == 0, result


def test_malformed_entries_are_dead_lettered_without_crashing(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=1).start()
    producer = Producer(server.url)
    meta = {"id": "m", "api_name": "faults", "event_name": "work", "version": "1"}
    bad = {
        "bad json": {**meta, ":seq": "{not json"},
        "missing metadata": {"api_name": "faults", ":seq": "1"},
        "unknown parameter": {**meta, ":seq": "1", ":colour": '"red"'},
        "wrong type": {**meta, ":seq": '"twelve"'},
        "huge value": {**meta, ":seq": "1", ":mode": json.dumps("x" * 10_000_000)},
        "non-UTF-8": {**meta, ":seq": b"\xff\xfe"},
    }
    producer.fire_range(0, 200)
    for fields in bad.values():
        client.xadd(STREAM, fields)
    producer.fire_range(200, 400)
    recover = _settle(runners, client, set(producer.fired), timeout=60)
    assert wait_for(lambda: len(dead_letters(client)) == len(bad), 20)
    runners.stop()
    result = account("malformed entries mixed in", set(producer.fired), runners.handled(), client,
                     recover_seconds=recover, fired=len(producer.fired) + len(bad))
    producer.close()
    reasons = [f[b"dl:reason"].decode() + ": " + f[b"dl:error"].decode()[:80] for f in dead_letters(client)]
    assert len(reasons) == len(bad)
    assert not runners.exits, runners.exits
    assert result.lost == 0 and result.pending_left == 0, (result, reasons)


def test_sigterm_during_a_burst_drains_and_exits_zero(server, tmp_path):
    client = server.client()
    runners = Runners(server, tmp_path, count=2, env={"FAULT_HANDLER_SLEEP": "0.02"}).start()
    runners.supervise = False
    producer = Producer(server.url)
    producer.fire_range(0, 1500)
    assert wait_for(lambda: len(runners.handled()) > 100, 30)
    started = time.monotonic()
    codes = runners.stop(timeout=30)
    stop_seconds = time.monotonic() - started
    # Whatever was not handled before the stop is still on the stream for the next run.
    restarted = Runners(server, tmp_path, count=1).start()
    recover = _settle(restarted, client, set(producer.fired), timeout=60)
    restarted.stop()
    handled = restarted.handled()  # same log dir: includes the first runners' logs
    result = account("SIGTERM during a burst", set(producer.fired), handled, client, recover_seconds=recover)
    producer.close()
    assert codes == [0, 0], codes
    assert stop_seconds < 15
    assert result.lost == 0 and result.pending_left == 0, result
