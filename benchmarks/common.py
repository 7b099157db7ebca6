"""Helpers shared by the cases: buses, bare clients, pre-filling, group state,
runner subprocesses and their resource usage."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

import redis

import lightbus_sync
from lightbus_sync.keys import stream_key
from lightbus_sync.wire import encode_event

from .apps.definitions import BUS_CONFIG, KWARGS, BenchAuthApi, BenchTimingApi  # noqa: F401 (registers APIs)

AUTH_API = "bench_auth"
AUTH_EVENT = "user_created"
AUTH_STREAM = stream_key(AUTH_API, AUTH_EVENT, "per_api")
TIMING_API = "bench_timing"
TIMING_STREAM = stream_key(TIMING_API, "timed", "per_api")

#: The library's default ``max_stream_length`` (no cap); bare XADDs do the same.
MAXLEN = None

_unique = itertools.count()


def unique(prefix: str) -> str:
    """A name not used before in this run (consumer groups, services)."""
    return f"{prefix}-{os.getpid()}-{next(_unique)}"


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_bus(ctx, service_name: str, config: Optional[dict] = None) -> lightbus_sync.Bus:
    """A bus on the benchmark Redis with ``batch_size=100``, ``config`` merged over."""
    merged = deep_merge(BUS_CONFIG, config or {})
    return lightbus_sync.create(
        redis_url=ctx.redis_url, service_name=service_name, process_name=f"{service_name}-proc", config=merged
    )


def bare_client(ctx) -> redis.Redis:
    """A plain redis-py client (its defaults, bytes replies), as the baselines use."""
    return redis.Redis(host="127.0.0.1", port=ctx.redis_port)


def auth_fields() -> dict[str, str]:
    """The entry fields of one user_created event, encoded once by the library."""
    return encode_event(str(uuid.uuid1()), AUTH_API, AUTH_EVENT, 1, dict(KWARGS))


def prefill(client: redis.Redis, stream: str, count: int, fields: Optional[dict] = None, chunk: int = 1000) -> str:
    """Delete ``stream`` and add ``count`` entries of pre-encoded ``fields`` (pipelined
    XADD, no trimming); return the last entry id."""
    fields = fields or auth_fields()
    client.delete(stream)
    last = b""
    for start in range(0, count, chunk):
        with client.pipeline(transaction=False) as pipe:
            for _ in range(min(chunk, count - start)):
                pipe.xadd(stream, fields)
            last = pipe.execute()[-1]
    return last.decode() if isinstance(last, bytes) else last


def group_state(client: redis.Redis, stream: str, group: str) -> Optional[dict]:
    for row in client.xinfo_groups(stream):
        name = row["name"].decode() if isinstance(row["name"], bytes) else row["name"]
        if name == group:
            return row
    return None


def group_drained(client: redis.Redis, stream: str, group: str, last_id: str) -> bool:
    """Every entry up to ``last_id`` delivered to the group and acked."""
    row = group_state(client, stream, group)
    if row is None:
        return False
    delivered = row["last-delivered-id"]
    delivered = delivered.decode() if isinstance(delivered, bytes) else delivered
    return delivered == last_id and row["pending"] == 0


HOLDING_GROUP = "bench-hold"


def group_before_backlog(client: redis.Redis, stream: str, group: str) -> None:
    """Create ``group`` at ``$`` (it is handed the backlog later by ``release_backlog``),
    and a consumerless group at ``0`` that holds the trim point: the runners trim what
    every group has acked, and without it they would trim the backlog the measured group
    has not yet been given."""
    client.xgroup_create(stream, HOLDING_GROUP, id="0")
    client.xgroup_create(stream, group, id="$")


def release_backlog(client: redis.Redis, stream: str, group: str) -> str:
    """Hand a group created at ``$`` the whole stream: ``XGROUP SETID group 0``, then
    one Lightbus "noop" entry (``XADD stream * "" ""``, acked and skipped by runners)
    so that readers blocked in ``XREADGROUP BLOCK`` wake now rather than at their
    block timeout (SETID alone wakes nobody). Returns the noop's id: the new last id."""
    client.xgroup_setid(stream, group, "0")
    entry_id = client.xadd(stream, {"": ""})
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def consumer_names(client: redis.Redis, stream: str, group: str) -> set[str]:
    try:
        rows = client.xinfo_consumers(stream, group)
    except redis.ResponseError:
        return set()
    return {r["name"].decode() if isinstance(r["name"], bytes) else r["name"] for r in rows}


def stop_runner(runner, client: redis.Redis, stream: str, timeout: float = 10.0) -> float:
    """``runner.stop()``, without waiting out the reader's ``XREADGROUP BLOCK`` (1 s by
    default): noop entries are added until the stop returns, so the blocked read
    returns at once. Returns how long the stop took."""
    started = time.perf_counter()
    stopper = threading.Thread(target=runner.stop, args=(timeout,), daemon=True)
    stopper.start()
    while stopper.is_alive():
        client.xadd(stream, {"": ""})
        stopper.join(0.01)
    return time.perf_counter() - started


def lightbus_sync_command() -> list[str]:
    """The ``lightbus-sync`` console script of this interpreter (not a pyenv shim, so
    the pid we sample is the runner's own), else ``python -m lightbus_sync.cli``."""
    beside = Path(sys.executable).with_name("lightbus-sync")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("lightbus-sync")
    if found and b"pyenv" not in Path(found).read_bytes()[:1024]:
        return [found]
    return [sys.executable, "-m", "lightbus_sync.cli"]


class RunnerProcess:
    """``lightbus-sync run --bus benchmarks.apps.drain_bus`` as a subprocess; with
    ``processes`` > 1, ``--processes N`` (a parent and N runner processes, consumers
    ``<process_name>-<k>``)."""

    def __init__(self, ctx, service_name: str, process_name: str, threads: int = 8, processes: int = 1) -> None:
        env = dict(os.environ)
        # After any PYTHONPATH given (a --ref snapshot must stay first).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), ctx.repo_root) if p)
        for name in ("LIGHTBUS_REDIS_URL", "LIGHTBUS_CONFIG", "LIGHTBUS_SERVICE_NAME", "LIGHTBUS_PROCESS_NAME"):
            env.pop(name, None)  # only what the command line says
        self.command = lightbus_sync_command() + [
            "--log-level", "WARNING", "run",
            "--bus", "benchmarks.apps.drain_bus",
            "--redis-url", ctx.redis_url,
            "--service-name", service_name,
            "--process-name", process_name,
            "--threads", str(threads),
            "--shutdown-timeout", "5",
        ]
        if processes > 1:
            self.command += ["--processes", str(processes)]
        self.process_name = process_name
        #: The consumer names this command's runners read as.
        self.consumers = [process_name] if processes == 1 else [f"{process_name}-{k}" for k in range(processes)]
        self.popen = subprocess.Popen(
            self.command, cwd=ctx.repo_root, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._output: list[bytes] = []
        self._reader = threading.Thread(target=self._drain_output, daemon=True)
        self._reader.start()

    def _drain_output(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            if len(self._output) < 200:
                self._output.append(line)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return b"".join(self._output).decode("utf-8", "replace")

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"runner {self.process_name} exited with {self.popen.returncode}:\n{self.output()[-3000:]}"
            )

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def reap(self, timeout: float) -> None:
        try:
            self.popen.wait(max(timeout, 0))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._reader.join(2)


def stop_processes(runners: list[RunnerProcess], client: redis.Redis, stream: str, timeout: float = 10.0) -> None:
    """SIGTERM every runner at once; add noop entries while they drain so their
    readers' blocked XREADGROUP returns at once; SIGKILL any left after ``timeout``."""
    for runner in runners:
        runner.terminate()
    deadline = time.monotonic() + timeout
    while any(r.popen.poll() is None for r in runners) and time.monotonic() < deadline:
        client.xadd(stream, {"": ""})
        time.sleep(0.01)
    for runner in runners:
        runner.reap(deadline - time.monotonic())


def wait_for_consumers(client: redis.Redis, stream: str, group: str, runners: list[RunnerProcess],
                       timeout: float = 30.0) -> None:
    """Until every runner's consumer exists in the group (its reader has issued its
    first XREADGROUP, so it is fully started)."""
    wanted = {name for r in runners for name in r.consumers}
    deadline = time.monotonic() + timeout
    while not wanted <= consumer_names(client, stream, group):
        for runner in runners:
            runner.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"runners {sorted(wanted)} did not start reading within {timeout:g}s")
        time.sleep(0.05)


def process_tree_rss(pid: int) -> int:
    """RSS in bytes of ``pid`` plus its children (0 once it has gone)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds used so far by ``pid`` (0 if gone), and with
    ``children`` by its live descendants too."""
    import psutil

    try:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        total = times.user + times.system
        for child in proc.children(recursive=True) if children else ():
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0
