"""Fault-injection harness: supervised `lightbus-sync run` processes, a producer, and the
final accounting (fired, handled, duplicates, dead-lettered, lost, time to recover)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import attrs
import redis

import lightbus_sync
from lightbus_sync.runner import dead_letter_stream
from lightbus_sync.testing.redis_server import RedisServer

from .app.fault_api import FaultApi  # noqa: F401  (the producer fires this API)

APP_DIR = Path(__file__).parent / "app"
STREAM = "faults.*:stream"
GROUP = "faults-worker"
SERVICE = "faults"

#: Config for fast recovery in tests: short acknowledgement timeout and socket timeout.
FAST_CONFIG = {
    "service_name": SERVICE,
    "apis": {"default": {
        "event_fire_timeout": 10,
        "event_transport": {"redis": {
            "acknowledgement_timeout": 2,
            "reclaim_interval": 0.25,
            "block_ms": 200,
            "socket_timeout": 1,
            "consumption_restart_delay": 0.5,
            "batch_size": 50,
        }},
    }},
    "bus": {"runner": {"shutdown_timeout": 10}},
}


@attrs.define
class ScenarioResult:
    name: str
    fired: int = 0
    handled: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    lost: int = 0
    pending_left: int = 0
    recover_seconds: Optional[float] = None
    notes: str = ""
    #: entries the runners reported lost (trimmed before their group read them)
    reported_lost: int = 0

    def row(self) -> list[str]:
        recover = "-" if self.recover_seconds is None else f"{self.recover_seconds:.1f}s"
        return [self.name, str(self.fired), str(self.handled), str(self.duplicates),
                str(self.dead_lettered), str(self.reported_lost), str(self.lost), recover]


RESULTS: list[ScenarioResult] = []
_LIVE_RUNNERS: list["Runners"] = []


def stop_all_runners() -> None:
    """Stop every Runners set still running (after a failed assertion, say): a scenario
    never leaves processes behind."""
    while _LIVE_RUNNERS:
        _LIVE_RUNNERS.pop().stop(timeout=5)


def _with_redis_settings(config: dict, settings: dict) -> dict:
    """``config`` with ``settings`` added to ``apis.default.event_transport.redis``."""
    config = json.loads(json.dumps(config))
    config["apis"]["default"]["event_transport"]["redis"].update(settings)
    return config


@attrs.define
class FailoverResult:
    """A failover scenario: ``confirmed`` fire() calls returned (with ``min_replicas``,
    the replicas confirmed them); ``lost`` of those were never handled."""

    name: str
    fired: int = 0
    confirmed: int = 0
    handled: int = 0
    lost: int = 0
    duplicates: int = 0
    failover_seconds: Optional[float] = None
    pending_left: int = 0

    def row(self) -> list[str]:
        failover = "-" if self.failover_seconds is None else f"{self.failover_seconds:.1f}s"
        return [self.name, str(self.fired), str(self.confirmed), str(self.handled), str(self.lost),
                str(self.duplicates), failover]


FAILOVER_HEADER = ["scenario", "fired", "confirmed", "handled", "lost", "duplicates", "failover time"]
FAILOVER_RESULTS: list[FailoverResult] = []


def format_table(results: list, header: Optional[list[str]] = None) -> str:
    header = header or ["scenario", "fired", "handled", "duplicates", "dead-lettered", "reported lost", "lost",
                        "recovered in"]
    rows = [header] + [r.row() for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Runners:
    """``count`` supervised ``lightbus-sync run`` processes with stable process names.
    A process that exits on its own is restarted (as systemd's Restart=on-failure would),
    after ``restart_delay`` seconds."""

    def __init__(self, server: RedisServer, workdir: Path, count: int, env: Optional[dict] = None,
                 restart_delay: float = 0.3, redis_settings: Optional[dict] = None,
                 url: Optional[str] = None) -> None:
        self.server = server
        self.url = url or server.url
        self.workdir = workdir
        self.log_dir = workdir / "handled"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.config_file = workdir / "bus.json"
        self.config_file.write_text(json.dumps(_with_redis_settings(FAST_CONFIG, redis_settings or {})))
        self.extra_env = env or {}
        self.restart_delay = restart_delay
        self.processes: dict[int, subprocess.Popen] = {}
        self.exits: list[tuple[int, int]] = []
        self.supervise = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self.count = count
        self.killed: set[int] = set()

    def _env(self) -> dict:
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": str(APP_DIR) + os.pathsep + env.get("PYTHONPATH", ""),
            "LIGHTBUS_REDIS_URL": self.url,
            "LIGHTBUS_CONFIG": str(self.config_file),
            "FAULT_LOG_DIR": str(self.log_dir),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def spawn(self, slot: int) -> subprocess.Popen:
        log = open(self.workdir / f"runner-{slot}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "lightbus_sync.cli", "--log-level", "WARNING", "run",
             "--bus", "fault_bus", "--process-name", f"runner-{slot}", "--threads", "8"],
            cwd=self.workdir, env=self._env(), stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        with self._lock:
            self.processes[slot] = process
        return process

    def start(self) -> "Runners":
        _LIVE_RUNNERS.append(self)
        for slot in range(self.count):
            self.spawn(slot)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                items = list(self.processes.items())
            for slot, process in items:
                code = process.poll()
                if code is not None and self.supervise and not self._stop.is_set():
                    self.exits.append((slot, code))
                    time.sleep(self.restart_delay)
                    if not self._stop.is_set():
                        self.spawn(slot)

    def kill(self, slot: int, sig: int = signal.SIGKILL) -> None:
        with self._lock:
            process = self.processes[slot]
        self.killed.add(process.pid)
        process.send_signal(sig)

    def stop(self, timeout: float = 20) -> list[int]:
        """SIGTERM every process and wait; returns the exit codes of those this harness
        did not kill itself."""
        if self in _LIVE_RUNNERS:
            _LIVE_RUNNERS.remove(self)
        self._stop.set()
        self._thread.join(2)
        with self._lock:
            processes = list(self.processes.values())
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in processes:
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if process.pid not in self.killed:
                codes.append(code)
        return codes

    def handled(self) -> collections.Counter:
        """How many times each ``seq`` was handled (its handler returned)."""
        return self._count_logged("handled-*.log")

    def failed_runs(self) -> collections.Counter:
        """How many times the handler ran (and raised) on each ``always_fail`` ``seq``."""
        return self._count_logged("failed-*.log")

    def _count_logged(self, pattern: str) -> collections.Counter:
        counts: collections.Counter = collections.Counter()
        for file in self.log_dir.glob(pattern):
            for line in file.read_text().split():
                counts[int(line)] += 1
        return counts


class Producer:
    """Fires ``faults.work`` events with sequence numbers from a thread; records which
    fire() calls returned (written for sure) and which raised (maybe written)."""

    def __init__(self, server_url: str, modes: Optional[Callable[[int], str]] = None, rate: float = 0,
                 redis_settings: Optional[dict] = None) -> None:
        self.bus = lightbus_sync.create(redis_url=server_url, service_name="producer", config={
            "apis": {"default": {"event_fire_timeout": 10,
                                 "event_transport": {"redis": {"socket_timeout": 1, **(redis_settings or {})}}}}})
        self.modes = modes or (lambda seq: "ok")
        self.rate = rate
        self.fired: list[int] = []
        self.failed: list[int] = []
        #: (seq, monotonic time fire() was called, time it returned or raised, returned?)
        self.calls: list[tuple[int, float, float, bool]] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def fire(self, seq: int) -> None:
        started = time.monotonic()
        try:
            self.bus.faults.work.fire(seq=seq, mode=self.modes(seq))
            self.fired.append(seq)
            self.calls.append((seq, started, time.monotonic(), True))
        except lightbus_sync.BusUnavailable:  # ReplicationNotConfirmed too
            self.failed.append(seq)
            self.calls.append((seq, started, time.monotonic(), False))

    def stop(self) -> None:
        """Stop a ``start()``ed producer after its current fire() (then ``join()``)."""
        self._stop.set()

    def fire_range(self, start: int, stop: int) -> None:
        for seq in range(start, stop):
            if self._stop.is_set():
                return
            self.fire(seq)
            if self.rate:
                time.sleep(1 / self.rate)

    def fire_batches(self, start: int, stop: int, batch: int = 1000) -> None:
        """``fire_many`` in batches (a big backlog, fast); every batch is recorded as fired."""
        for low in range(start, stop, batch):
            seqs = list(range(low, min(low + batch, stop)))
            self.bus.faults.work.fire_many([{"seq": seq, "mode": self.modes(seq)} for seq in seqs])
            self.fired.extend(seqs)

    def start(self, start: int, stop: int) -> "Producer":
        self._thread = threading.Thread(target=self.fire_range, args=(start, stop), daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 120) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "producer did not finish"

    def close(self) -> None:
        self.bus.close()


def settle(runners: "Runners", client: redis.Redis, expected: set[int], timeout: float,
           since: Optional[float] = None, interval: float = 0.25) -> float:
    """Wait until every expected seq is handled (or dead-lettered) and nothing is pending;
    return the seconds from ``since`` (the end of the fault; default now) to that point."""
    started = time.monotonic() if since is None else since

    def done() -> bool:
        handled = runners.handled()
        dead = dead_seqs(client)
        return all(handled[s] or s in dead for s in expected) and pending_count(client) == 0

    wait_for(done, timeout, interval=interval)
    return time.monotonic() - started


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def dead_letters(client: redis.Redis) -> list[dict]:
    return [fields for _, fields in client.xrange(dead_letter_stream(STREAM))]


def dead_seqs(client: redis.Redis) -> set[int]:
    """The ``seq`` of each dead-lettered event that has a readable one."""
    seqs = set()
    for fields in dead_letters(client):
        try:
            seqs.add(int(json.loads(fields[b":seq"])))
        except (KeyError, ValueError, TypeError, RecursionError):
            pass
    return seqs


def pending_count(client: redis.Redis) -> int:
    try:
        return client.xpending(STREAM, GROUP)["pending"]
    except redis.ResponseError:
        return 0


def account(name: str, expected: set[int], handled: collections.Counter, client: redis.Redis,
            dead_expected: set[int] = frozenset(), recover_seconds: Optional[float] = None,
            fired: Optional[int] = None, reported_lost: int = 0) -> ScenarioResult:
    """Compare what was expected to be handled with what was; record the row. ``lost``
    counts the events neither handled, nor dead-lettered, nor among the ``reported_lost``
    the runners reported (a loss reported is accounted for, one not reported is lost)."""
    dead = dead_letters(client)
    dead_set = dead_seqs(client)
    missing = {seq for seq in expected if handled[seq] == 0 and seq not in dead_set}
    result = ScenarioResult(
        name=name,
        fired=len(expected) + len(dead_expected) if fired is None else fired,
        handled=sum(1 for seq in expected if handled[seq] > 0),
        duplicates=sum(count - 1 for count in handled.values() if count > 1),
        dead_lettered=len(dead),
        lost=max(len(missing) - reported_lost, 0),
        pending_left=pending_count(client),
        recover_seconds=recover_seconds,
        reported_lost=reported_lost,
    )
    RESULTS.append(result)
    return result
