"""``lightbus-sync run`` as real processes on a real Redis: the bus module's hooks, many
listeners over several processes, restarts, kill -9, signals, exit codes, systemd."""

from __future__ import annotations

import configparser
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time


from runner_apps.harness import (  # noqa: F401 (fixtures)
    APPS_DIR,
    REPO_ROOT,
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
from runner_apps.seed_auth_api import AuthApi  # noqa: F401 (defines the seed's API)

STREAM = "runner_test.*:stream"


# --- the bus module ------------------------------------------------------------------------


def test_seed_bus_module_as_written_exits_2_asking_for_listener_names(tmp_path, redis_url):
    result = run_cli(tmp_path, "run", "--bus", "seed_bus", "--redis-url", redis_url)
    assert result.returncode == 2, result.stderr
    assert "listener_name" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_calls_before_server_start_and_the_hooks_and_handles_the_seed_events(
        run_process, redis_url, redis_client, producer):
    process = run_process("seed_bus_fixed", redis_url, "--service-name", "other_service", config=fast_config())
    process.wait_ready()
    groups = {g["name"].decode() for g in redis_client.xinfo_groups("auth.*:stream")}
    assert groups == {"other_service-user_created", "other_service-user_updated", "other_service-user_deleted"}
    assert lines(redis_client, "hooks") == ["before_server_start", "on_start"]

    producer.auth.user_created.fire(username="adam", email="adam@example.com")
    producer.auth.user_created.fire(username="bob", email="bob@example.com")
    wait_until(lambda: redis_client.hlen("user_db") == 2, 10, what="two users")
    producer.auth.user_updated.fire(username="adam", new_email="adam@new.example.com")
    wait_until(lambda: redis_client.hget("user_db", "adam") == b"adam@new.example.com", 10, what="update")
    producer.auth.user_deleted.fire(username="bob")
    wait_until(lambda: redis_client.hlen("user_db") == 1, 10, what="delete")
    assert process.stop() == 0
    assert lines(redis_client, "hooks") == ["before_server_start", "on_start", "on_stop"]
    assert redis_client.hgetall("user_db") == {b"adam": b"adam@new.example.com"}


# --- many listeners, many processes ----------------------------------------------------------


def test_sixteen_listeners_in_three_processes_handle_every_event_exactly_once(
        run_process, redis_url, redis_client, producer):
    events, listeners = 150, 16
    processes = [
        run_process("recording_bus", redis_url, "--threads", "4", config=fast_config(),
                    env={"LISTENERS": str(listeners), "TEST_LABEL": f"w{i}"})
        for i in range(3)
    ]
    for process in processes:
        process.wait_ready()
    for start in range(0, events, 50):
        producer.runner_test.job.fire_many([{"n": n} for n in range(start, start + 50)])
    for index in range(listeners):
        wait_until(lambda: redis_client.llen(f"seen:l{index}") >= events, 30, what=f"listener l{index}")
    time.sleep(1.5)  # past the acknowledgement timeout: a duplicate would show up now
    workers = set()
    for index in range(listeners):
        seen = [line.split("|") for line in lines(redis_client, f"seen:l{index}")]
        assert sorted(int(n) for n, _, _ in seen) == list(range(events)), f"l{index}"
        assert {delivery for _, _, delivery in seen} == {"1"}, f"l{index} saw redeliveries"
        workers |= {label for _, label, _ in seen}
        assert pending_count(redis_client, STREAM, f"rt-l{index}") == 0
        assert len(consumer_names(redis_client, STREAM, f"rt-l{index}")) == 3
    assert workers <= {"w0", "w1", "w2"} and len(workers) >= 2
    for process in processes:
        assert process.stop() == 0


def test_an_entry_that_kills_its_process_is_dead_lettered_and_spares_the_others(
        run_process, redis_url, redis_client, producer):
    """Event 5's handler kills the process every time. With max_deliveries=2 it runs twice
    (one crash per run), then is dead-lettered without running; the events fetched
    alongside it, delivered as often but mostly never run, are handled, none dead-lettered."""
    env = {"EXIT_ON": "5", "MAX_DELIVERIES": "2"}
    args = ("--process-name", "crashy", "--threads", "4")
    process = run_process("recording_bus", redis_url, *args, config=fast_config(), env=env).wait_ready()
    producer.runner_test.job.fire_many([{"n": n} for n in range(12)])
    crashes = 0

    def settled() -> bool:
        handled = {int(line.split("|")[0]) for line in lines(redis_client, "seen:l0")}
        return handled == set(range(12)) - {5} and redis_client.xlen("{runner_test.*:stream}:dead") == 1

    for _ in range(4):
        wait_until(lambda: process.proc.poll() is not None or settled(), 15, what="a crash or the end")
        if process.proc.poll() is None:
            break
        assert process.proc.returncode == 17
        crashes += 1
        # not waited for READY: the restart may run event 5 (and crash) before it says READY
        process = run_process("recording_bus", redis_url, *args, config=fast_config(), env=env)
    wait_until(lambda: pending_count(redis_client, STREAM, "rt-l0") == 0, 5, what="all settled")
    assert crashes == 2
    assert [line.split("|")[0] for line in lines(redis_client, "started:l0")].count("5") == 2
    ((_, dead),) = redis_client.xrange("{runner_test.*:stream}:dead")
    assert dead[b":n"] == b"5" and b"run 2 times" in dead[b"dl:reason"]
    assert process.stop() == 0


# --- restarts and consumer names -------------------------------------------------------------


def test_restart_with_the_same_process_name_handles_its_own_pending_entries_first(
        run_process, redis_url, redis_client, producer):
    slow_reclaim = fast_config({"acknowledgement_timeout": 60})  # only the restart may take them
    # Room for exactly five (two running, three read ahead): once it holds five, the first
    # process has no XREADGROUP waiting, which Redis could still serve after the kill.
    first = run_process("recording_bus", redis_url, "--process-name", "slot-1", "--threads", "2",
                        "--prefetch", "3", config=slow_reclaim, env={"HANDLER_MODE": "block", "TEST_LABEL": "first"})
    first.wait_ready()
    producer.runner_test.job.fire_many([{"n": n} for n in range(5)])
    wait_until(lambda: redis_client.llen("started:l0") == 2, 10, what="two handlers blocked")
    wait_until(lambda: pending_count(redis_client, STREAM, "rt-l0") == 5, 5, what="five read")
    time.sleep(0.3)  # a blocked read in flight ends (BLOCK is 100 ms)
    first.kill9()
    producer.runner_test.job.fire_many([{"n": n} for n in range(5, 8)])  # not delivered to anyone yet

    second = run_process("recording_bus", redis_url, "--process-name", "slot-1", "--threads", "1",
                         config=slow_reclaim, env={"TEST_LABEL": "second"})
    second.wait_ready()
    wait_until(lambda: redis_client.llen("seen:l0") == 8, 10, what="all eight handled")
    wait_until(lambda: pending_count(redis_client, STREAM, "rt-l0") == 0, 5, what="all acked")
    assert second.stop() == 0
    assert lines(redis_client, "seen:l0") == [f"{n}|second|2" for n in range(5)] + [
        f"{n}|second|1" for n in range(5, 8)]
    assert consumer_names(redis_client, STREAM, "rt-l0") == ["slot-1"]


def test_default_consumer_names_are_per_process_and_do_not_pile_up(run_process, redis_url, redis_client):
    host = socket.gethostname()
    for cycle in range(3):
        process = run_process("recording_bus", redis_url, config=fast_config(), env={"TEST_LABEL": f"c{cycle}"})
        process.wait_ready()
        own = f"{host}-{process.pid}"
        wait_until(lambda: own in consumer_names(redis_client, STREAM, "rt-l0"), 5, what="own consumer")
        assert len(consumer_names(redis_client, STREAM, "rt-l0")) == (1 if cycle == 0 else 2)
        assert process.stop() == 0
        # Deleted on a clean stop, except the group's last consumer (kept on purpose).
        assert len(consumer_names(redis_client, STREAM, "rt-l0")) == 1


def test_forked_processes_get_their_own_consumer_names(tmp_path, redis_url):
    script = textwrap.dedent("""
        import os, sys
        import lightbus_sync, runner_api
        from lightbus_sync.runner import Runner
        bus = lightbus_sync.create(redis_url=sys.argv[1], service_name="forks")
        bus.runner_test.job.listen(lambda n, sleep: None, listener_name="l0")
        pid = os.fork()
        name = Runner(bus).consumer_name
        if pid == 0:
            print("child", os.getpid(), name, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent", os.getpid(), name, flush=True)
    """)
    env = {"PYTHONPATH": os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)]), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script, redis_url], capture_output=True, text=True,
                            env=env, timeout=30, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = {role: (pid, name) for role, pid, name in (line.split() for line in result.stdout.splitlines())}
    assert names["child"][1] != names["parent"][1]
    assert names["child"][1].endswith(f"-{names['child'][0]}")
    assert names["parent"][1].endswith(f"-{names['parent'][0]}")


# --- signals and exit codes ------------------------------------------------------------------


def test_sigterm_lets_in_flight_handlers_finish_acks_them_and_exits_0(
        run_process, redis_url, redis_client, producer):
    first = run_process("recording_bus", redis_url, "--threads", "3", "--process-name", "drainer",
                        config=fast_config(), env={"HANDLER_SLEEP": "1", "TEST_LABEL": "first"})
    first.wait_ready()
    producer.runner_test.job.fire_many([{"n": n} for n in range(8)])
    wait_until(lambda: redis_client.llen("started:l0") >= 3, 10, what="three handlers running")
    first.signal(signal.SIGTERM)
    first.notify.wait_for("STOPPING=1")
    assert first.wait() == 0
    started = lines(redis_client, "started:l0")
    assert sorted(lines(redis_client, "seen:l0")) == sorted(started)  # every started handler finished
    # Entries fetched but not started were given back: pending, idle for the whole
    # acknowledgement timeout already, so that any live consumer takes them at once.
    held = redis_client.xpending_range(STREAM, "rt-l0", "-", "+", 100)
    assert all(row["time_since_delivered"] >= 1000 for row in held), held
    assert len(held) + len(started) <= 8  # the finished ones were acked

    # What the first process did not handle is handled by the next one, once.
    second = run_process("recording_bus", redis_url, "--threads", "3", config=fast_config(),
                         env={"TEST_LABEL": "second"})
    second.wait_ready()
    wait_until(lambda: redis_client.llen("seen:l0") >= 8, 15, what="all eight handled")
    wait_until(lambda: pending_count(redis_client, STREAM, "rt-l0") == 0, 5, what="all acked")
    assert second.stop() == 0
    assert sorted(int(line.split("|")[0]) for line in lines(redis_client, "seen:l0")) == list(range(8))


def test_sigterm_while_the_bus_module_loads_exits_0_before_reading(run_process, redis_url, redis_client):
    process = run_process("slow_start_bus", redis_url, config=fast_config())
    wait_until(lambda: redis_client.get("importing") is not None, 15, what="the bus module importing")
    process.signal(signal.SIGTERM)
    assert process.wait(20) == 0, process.output()
    assert "stop requested while starting" in process.output()
    assert not redis_client.keys("*:stream")  # nothing was read, no group was made


def test_drain_cut_by_the_shutdown_timeout_exits_1_leaving_entries_pending(
        run_process, redis_url, redis_client, producer):
    process = run_process("recording_bus", redis_url, "--threads", "1", "--shutdown-timeout", "0.5",
                          "--process-name", "slow-drain", config=fast_config(), env={"HANDLER_SLEEP": "20"})
    process.wait_ready()
    producer.runner_test.job.fire(n=1)
    wait_until(lambda: redis_client.llen("started:l0") == 1, 10, what="handler running")
    assert process.stop() == 1
    assert redis_client.llen("seen:l0") == 0
    rows = redis_client.xpending_range(STREAM, "rt-l0", "-", "+", 10)
    assert [r["consumer"] for r in rows] == [b"slow-drain"]
    assert "shutdown timeout" in process.output()


def test_second_signal_exits_at_once_leaving_unfinished_entries_pending(
        run_process, redis_url, redis_client, producer):
    process = run_process("recording_bus", redis_url, "--threads", "2", "--process-name", "impatient",
                          config=fast_config(), env={"HANDLER_SLEEP": "20", "TEST_LABEL": "x"})
    process.wait_ready()
    producer.runner_test.job.fire_many([{"n": 1}, {"n": 2}])
    wait_until(lambda: redis_client.llen("started:l0") == 2, 10, what="two handlers running")
    process.signal(signal.SIGTERM)
    process.notify.wait_for("STOPPING=1")
    process.signal(signal.SIGINT)
    assert process.wait(10) == 1
    assert redis_client.llen("seen:l0") == 0  # the handlers never finished
    rows = redis_client.xpending_range(STREAM, "rt-l0", "-", "+", 10)
    assert [r["consumer"] for r in rows] == [b"impatient", b"impatient"]


def test_exit_codes_bad_configuration_2_failed_import_3(tmp_path, redis_url):
    bad_config = tmp_path / "bad.json"
    bad_config.write_text(json.dumps({"bus": {"runner": {"thread": 4}}}))
    result = run_cli(tmp_path, "run", "--bus", "recording_bus", "--redis-url", redis_url, "--config", str(bad_config),
                     env={"TEST_REDIS_URL": redis_url})
    assert result.returncode == 2, result.stderr
    assert "thread" in result.stderr and "Traceback" not in result.stderr

    for flag in ("--threads", "--prefetch"):
        result = run_cli(tmp_path, "run", "--bus", "recording_bus", "--redis-url", redis_url, flag, "-1",
                         env={"TEST_REDIS_URL": redis_url})
        assert result.returncode == 2, (flag, result.stderr)
        assert flag.lstrip("-") in result.stderr

    result = run_cli(tmp_path, "run", "--bus", "broken_bus", "--redis-url", redis_url)
    assert result.returncode == 3, result.stderr
    assert "Traceback" in result.stderr and "boom while importing broken_bus" in result.stderr

    result = run_cli(tmp_path, "run", "--bus", "no_such_bus_module", "--redis-url", redis_url)
    assert result.returncode == 3, result.stderr
    assert "no bus module named 'no_such_bus_module'" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr  # one line

    result = run_cli(tmp_path, "run", "--bus", "hook_fails_bus", "--redis-url", redis_url)
    assert result.returncode == 3, result.stderr
    assert "before_server_start" in result.stderr and "settings missing" in result.stderr
    assert "Traceback" in result.stderr


# --- systemd ---------------------------------------------------------------------------------


def test_systemd_ready_status_watchdog_and_stopping(run_process, redis_url, redis_client, producer):
    process = run_process("recording_bus", redis_url, config=fast_config(),
                          env={"WATCHDOG_USEC": "400000", "HANDLER_SLEEP": "1.2"})
    process.wait_ready()
    # READY=1 is sent once the consumer groups exist.
    assert [g["name"] for g in redis_client.xinfo_groups(STREAM)] == [b"rt-l0"]
    wait_until(lambda: process.notify.lines().count("WATCHDOG=1") >= 3, 10, what="watchdog pings")
    notified = process.notify.lines()
    assert notified.count("READY=1") == 1
    status = [line for line in notified if line.startswith("STATUS=")]
    assert status and "listener" in status[0]
    assert "STOPPING=1" not in notified

    producer.runner_test.job.fire(n=1)
    wait_until(lambda: redis_client.llen("started:l0") == 1, 10, what="handler running")
    wait_until(lambda: any("in flight 1" in line for line in process.notify.lines()), 5, what="STATUS update")
    assert process.stop() == 0
    notified = process.notify.lines()
    assert notified.count("STOPPING=1") == 1 and notified.index("STOPPING=1") > notified.index("READY=1")
    # The watchdog is still answered while the handler finishes during the drain.
    assert "WATCHDOG=1" in notified[notified.index("STOPPING=1"):]
    assert redis_client.llen("seen:l0") == 1


def test_example_systemd_unit(tmp_path):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(REPO_ROOT / "deploy" / "lightbus-sync.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert "WatchdogSec" in service and "NotifyAccess" in service
    exec_start = service["ExecStart"]
    assert re.search(r"lightbus-sync run\b", exec_start)
    shutdown = float(re.search(r"--shutdown-timeout[ =](\d+)", exec_start).group(1))
    assert float(service["TimeoutStopSec"].rstrip("s")) > shutdown
    # The flags the unit uses exist.
    help_text = run_cli(tmp_path, "run", "--help").stdout
    for flag in re.findall(r"(--[a-z-]+)", exec_start):
        assert flag in help_text, flag
