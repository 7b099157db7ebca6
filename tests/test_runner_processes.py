"""``lightbus-sync run --processes N`` as real processes on a real Redis: slots and their
consumer names, systemd notify from the parent alone, a child killed under load, a
drain of every child on SIGTERM, a bus module that fails to import, one /metrics."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request

import psutil
from prometheus_client.parser import text_string_to_metric_families

from runner_apps.harness import (  # noqa: F401 (fixtures)
    consumer_names,
    fast_config,
    lines,
    pending_count,
    producer,
    run_cli,
    run_process,
    wait_until,
)
from runner_apps.runner_api import RunnerTestApi  # noqa: F401 (defines the API)

STREAM = "runner_test.*:stream"
GROUP = "rt-l0"


def numbers(client, key: str) -> list[int]:
    return sorted(int(line.split("|")[0]) for line in lines(client, key))


def slots(process) -> dict[str, int]:
    """{consumer name of the slot: pid} of the parent's live children."""
    found = {}
    for child in psutil.Process(process.pid).children():
        try:
            name = child.environ().get("LIGHTBUS_SYNC_SLOT_NAME")
            if name and child.status() != psutil.STATUS_ZOMBIE:
                found[name] = child.pid
        except psutil.Error:
            pass
    return found


def statuses(process) -> list[str]:
    return [line for line in process.notify.lines() if line.startswith("STATUS=")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_two_slots_with_stable_names_one_ready_and_every_event_handled_once(
        run_process, redis_url, redis_client, producer):
    process = run_process("recording_bus", redis_url, "--processes", "2", "--threads", "2", "--process-name", "w",
                          config=fast_config(), env={"HANDLER_SLEEP": "0.005", "WATCHDOG_USEC": "400000"})
    process.wait_ready(30)
    assert process.notify.lines().count("READY=1") == 1
    assert any("2/2 processes ready" in line for line in statuses(process))
    assert set(slots(process)) == {"w-0", "w-1"}
    assert consumer_names(redis_client, STREAM, GROUP) == ["w-0", "w-1"]
    hooks = lines(redis_client, "hooks")
    assert sum(h.startswith("before_server_start|") for h in hooks) == 2

    for n in range(300):
        producer.runner_test.job.fire(n=n)
    wait_until(lambda: redis_client.llen("seen:l0") >= 300, 30, what="300 handled")
    wait_until(lambda: pending_count(redis_client, STREAM, GROUP) == 0, 10, what="all acked")
    assert numbers(redis_client, "seen:l0") == list(range(300))  # each exactly once
    assert len({line.split("|")[1] for line in lines(redis_client, "seen:l0")}) == 2  # both processes worked
    wait_until(lambda: any("processed 300" in line for line in statuses(process)), 10, what="STATUS totals")
    assert process.notify.lines().count("WATCHDOG=1") >= 2  # the parent answers the service's watchdog

    children = list(slots(process).values())
    assert process.stop() == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in children)
    assert sum(h.startswith("on_stop|") for h in lines(redis_client, "hooks")) == 2


def test_a_child_killed_under_load_loses_nothing_and_its_slot_restarts(
        run_process, redis_url, redis_client, producer):
    process = run_process("recording_bus", redis_url, "--processes", "2", "--threads", "2", "--process-name", "k",
                          config=fast_config(), env={"HANDLER_SLEEP": "0.01"})
    process.wait_ready(30)
    total = 400
    producer.runner_test.job.fire_many([{"n": n} for n in range(total)])
    wait_until(lambda: redis_client.llen("started:l0") >= 40, 20, what="handlers running")
    victim = slots(process)["k-1"]
    psutil.Process(victim).kill()

    restarted = wait_until(lambda: slots(process).get("k-1") not in (None, victim), 20, what="slot k-1 restarted")
    assert restarted
    wait_until(lambda: set(numbers(redis_client, "seen:l0")) == set(range(total)), 60, what="every event handled")
    wait_until(lambda: pending_count(redis_client, STREAM, GROUP) == 0, 20, what="nothing pending")
    assert consumer_names(redis_client, STREAM, GROUP) == ["k-0", "k-1"]  # the same consumer, restarted
    wait_until(lambda: any("restarts 1" in line and "2/2 processes ready" in line for line in statuses(process)),
               20, what="STATUS after the restart")
    assert process.notify.lines().count("READY=1") == 1
    assert "restarting it in" in process.output()
    assert process.stop() == 0


def test_sigterm_to_the_parent_drains_every_child_and_exits_0(run_process, redis_url, redis_client, producer):
    process = run_process("recording_bus", redis_url, "--processes", "2", "--threads", "2", "--process-name", "d",
                          config=fast_config(), env={"HANDLER_SLEEP": "1"})
    process.wait_ready(30)
    for n in range(8):  # one at a time: each XADD wakes one of the blocked readers
        producer.runner_test.job.fire(n=n)
        time.sleep(0.03)
    wait_until(lambda: len({line.split("|")[1] for line in lines(redis_client, "started:l0")}) == 2, 10,
               what="handlers running in both processes")
    children = list(slots(process).values())
    process.signal(signal.SIGTERM)
    process.notify.wait_for("STOPPING=1")
    assert process.wait(30) == 0, process.output()
    started = lines(redis_client, "started:l0")
    assert sorted(lines(redis_client, "seen:l0")) == sorted(started)  # every started handler finished
    held = redis_client.xpending_range(STREAM, GROUP, "-", "+", 100)
    assert len(held) + len(started) == 8  # finished ones acked; the rest given back
    assert all(row["time_since_delivered"] >= 1000 for row in held), held
    assert sum(h.startswith("on_stop|") for h in lines(redis_client, "hooks")) == 2
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in children)


def test_a_child_that_cannot_import_the_bus_module_makes_the_parent_exit_3_without_restarts(tmp_path, redis_url):
    started = time.monotonic()
    result = run_cli(tmp_path, "run", "--bus", "broken_bus", "--redis-url", redis_url, "--processes", "2")
    assert result.returncode == 3, result.stderr
    assert time.monotonic() - started < 25
    assert 1 <= result.stderr.count("failed to import:") <= 2  # once per child at most
    assert "boom while importing broken_bus" in result.stderr
    assert "no restart" in result.stderr and "restarting it in" not in result.stderr


def test_processes_from_the_config_file_and_bad_values(tmp_path, run_process, redis_url, redis_client):
    config = fast_config(runner={"processes": 2})
    process = run_process("recording_bus", redis_url, "--process-name", "c", config=config)
    process.wait_ready(30)
    assert consumer_names(redis_client, STREAM, GROUP) == ["c-0", "c-1"]
    assert process.stop() == 0

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bus": {"runner": {"processes": 0}}}))
    result = run_cli(tmp_path, "run", "--bus", "recording_bus", "--redis-url", redis_url, "--config", str(bad),
                     env={"TEST_REDIS_URL": redis_url})
    assert result.returncode == 2 and "processes" in result.stderr, result.stderr
    result = run_cli(tmp_path, "run", "--bus", "recording_bus", "--redis-url", redis_url, "--processes", "0",
                     env={"TEST_REDIS_URL": redis_url})
    assert result.returncode == 2 and "--processes" in result.stderr, result.stderr


def test_one_metrics_endpoint_counts_what_every_child_did(run_process, redis_url, redis_client, producer):
    port = free_port()
    process = run_process("recording_bus", redis_url, "--processes", "2", "--threads", "2",
                          "--metrics-port", str(port), "--metrics-host", "127.0.0.1", config=fast_config(),
                          env={"HANDLER_SLEEP": "0.005"})
    process.wait_ready(30)
    for n in range(60):
        producer.runner_test.job.fire(n=n)
    wait_until(lambda: redis_client.llen("seen:l0") >= 60, 20, what="60 handled")
    assert len({line.split("|")[1] for line in lines(redis_client, "seen:l0")}) == 2

    def counted():
        try:
            samples = scrape(port)
        except (urllib.error.URLError, OSError):
            return None
        ok = samples.get(("lightbus_sync_events_processed_total", (("listener", "l0"), ("outcome", "ok"))))
        pending = samples.get(("lightbus_sync_group_pending",
                               (("group", GROUP), ("listener", "l0"), ("stream", STREAM))))
        return samples if ok == 60 and pending == 0 else None

    samples = wait_until(counted, 20, what="the children's counters summed on one endpoint")
    assert samples[("lightbus_sync_handler_duration_seconds_count", (("listener", "l0"),))] == 60
    assert samples[("lightbus_sync_events_in_flight", (("listener", "l0"),))] == 0
    assert process.stop() == 0


def test_a_drain_cut_by_the_shutdown_timeout_or_a_second_signal_exits_1_leaving_entries_pending(
        run_process, redis_url, redis_client, producer):
    slow = run_process("recording_bus", redis_url, "--processes", "2", "--threads", "1", "--shutdown-timeout", "0.5",
                       "--process-name", "cut", config=fast_config(), env={"HANDLER_SLEEP": "20"})
    slow.wait_ready(30)
    producer.runner_test.job.fire(n=1)
    wait_until(lambda: redis_client.llen("started:l0") == 1, 10, what="handler running")
    assert slow.stop(20) == 1
    assert redis_client.llen("seen:l0") == 0
    assert [r["consumer"] for r in redis_client.xpending_range(STREAM, GROUP, "-", "+", 10)] in ([b"cut-0"], [b"cut-1"])

    redis_client.delete("started:l0")
    impatient = run_process("recording_bus", redis_url, "--processes", "2", "--threads", "1",
                            "--process-name", "cut", config=fast_config(), env={"HANDLER_SLEEP": "20"})
    impatient.wait_ready(30)
    producer.runner_test.job.fire(n=2)
    wait_until(lambda: redis_client.llen("started:l0") >= 1, 10, what="handler running")
    impatient.signal(signal.SIGTERM)
    impatient.notify.wait_for("STOPPING=1")
    impatient.signal(signal.SIGINT)
    assert impatient.wait(10) == 1
    assert redis_client.llen("seen:l0") == 0
    assert pending_count(redis_client, STREAM, GROUP) >= 1


def test_a_metrics_port_in_use_exits_2_before_starting_children(tmp_path, redis_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(tmp_path, "run", "--bus", "recording_bus", "--redis-url", redis_url, "--processes", "2",
                         "--metrics-port", str(port), "--metrics-host", "127.0.0.1", env={"TEST_REDIS_URL": redis_url})
    assert result.returncode == 2, result.stderr
    assert "cannot serve metrics" in result.stderr and "started process" not in result.stderr
