"""The benchmark-process side of the peer cases (runs in lightbus_sync's Python):
pre-filling with lightbus_sync, starting and stopping the peers' workers, reading
their results. Also the lightbus_sync variant the paced latency of Lightbus is
compared with (two processes, like Lightbus's).

Each function ``<peer>_<case>(ctx, status)`` is one repetition, returning the case's
metrics. Sizes (events per repetition) are in ``SIZES``: the peers are much slower
than lightbus_sync, so they get fewer events, enough for seconds of steady state.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from ..common import (
    AUTH_STREAM, TIMING_STREAM, auth_fields, bare_client, consumer_names, lightbus_sync_command, make_bus, prefill,
    unique,
)
from . import PeerStatus, REPO_ROOT, peer_env, run_peer
from .lightbus_config import lightbus_config

#: (quick, full) events per repetition.
SIZES = {
    "lightbus_fire": (300, 2_000),
    "lightbus_consume": (600, 5_000),
    "dramatiq_fire": (1_500, 10_000),
    "dramatiq_consume": (1_500, 10_000),
}
#: Paced latency of two processes (Lightbus's fire() tops out near 1,000/s on this
#: machine, its worker lower: 1,000/s would measure a growing queue, not latency).
PACED_RATE = 200
PACED_SECONDS = (1.0, 5.0)  # quick, full
WARMUP_FRACTION = 0.1
RESULT_TIMEOUT = 240.0
READY_TIMEOUT = 30.0


def _size(ctx, key: str) -> int:
    return ctx.size(*SIZES[key])


class WorkerProcess:
    """A worker subprocess (``lightbus run`` / ``lightbus-sync run``) whose handler
    prints ``BENCH_RESULT <json>`` lines; everything else it prints is kept (tail) for
    error messages."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: str) -> None:
        self.name = name
        self.command = command
        self.popen = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)
        self.results: queue.Queue = queue.Queue()
        self._tail: list[str] = []
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("BENCH_RESULT "):
                self.results.put(json.loads(line.split(" ", 1)[1]))
            else:
                self._tail = (self._tail + [line])[-60:]

    def output(self) -> str:
        return "\n".join(self._tail)

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            self._reader.join(2)
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-3000:]}")

    def result(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.results.get(timeout=0.05)
            except queue.Empty:
                self.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name}: no result in {timeout:g}s:\n{self.output()[-3000:]}") from None

    def wait_consumer(self, client, stream: str, group: str, consumer: str, timeout: float = READY_TIMEOUT) -> None:
        """Until ``consumer`` exists in ``group`` (its first XREADGROUP was made)."""
        deadline = time.monotonic() + timeout
        while consumer not in consumer_names(client, stream, group):
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start reading within {timeout:g}s:\n{self.output()[-3000:]}")
            time.sleep(0.02)

    def stop(self, client, stream: str, timeout: float = 15.0) -> None:
        """SIGTERM; noop entries on ``stream`` wake a reader blocked in XREADGROUP
        (both Lightbus and lightbus_sync ack and skip them); SIGKILL after ``timeout``."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None and time.monotonic() < deadline:
            try:
                client.xadd(stream, {"": ""})
            except Exception:  # noqa: BLE001 -- best effort
                pass
            time.sleep(0.02)
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)
        self._reader.join(2)


# --------------------------------------------------------------------------- Lightbus


def _lightbus_worker(ctx, status: PeerStatus, service: str, process: str, mode: str, n: int,
                     config_path: Path) -> WorkerProcess:
    """``lightbus run`` (the real CLI of the venv) on ``benchmarks.peers.lightbus_bus``."""
    config_path.write_text(json.dumps(lightbus_config(ctx.redis_url)))
    lightbus_bin = str(Path(status.python).with_name("lightbus"))
    command = [lightbus_bin, "run", "--bus", "benchmarks.peers.lightbus_bus", "--config", str(config_path),
               "--service-name", service, "--process-name", process, "--log-level", "warning", "--only", "events"]
    env = peer_env(ctx.redis_url, {"BENCH_LB_MODE": mode, "BENCH_LB_N": str(n)})
    return WorkerProcess(f"lightbus run ({mode})", command, env, str(REPO_ROOT))


def _temp_config() -> Path:
    fd, name = tempfile.mkstemp(prefix="bench-lightbus-", suffix=".json")
    os.close(fd)
    return Path(name)


def lightbus_fire(ctx, status: PeerStatus) -> dict[str, float]:
    client = bare_client(ctx)
    try:
        client.delete(AUTH_STREAM)
        return run_peer(status, ctx.redis_url, ["--case", "fire", "--n", str(_size(ctx, "lightbus_fire")),
                                                "--service-name", unique("bench-lb-fire")])
    finally:
        client.delete(AUTH_STREAM)
        client.close()


def lightbus_consume(ctx, status: PeerStatus) -> dict[str, float]:
    """N entries pre-filled by lightbus_sync, drained by ``lightbus run`` (listener
    ``since: 0``); the worker notes the 1st and N-th handler call (time, its CPU)."""
    n = _size(ctx, "lightbus_consume")
    client = bare_client(ctx)
    config_path = _temp_config()
    prefill(client, AUTH_STREAM, n, auth_fields())
    service = unique("bench-lb-consume")
    worker = _lightbus_worker(ctx, status, service, f"{service}-p", "drain", n, config_path)
    try:
        noted = worker.result(RESULT_TIMEOUT)
    finally:
        worker.stop(client, AUTH_STREAM)
        client.delete(AUTH_STREAM)
        client.close()
        config_path.unlink(missing_ok=True)
    span = noted["last_t"] - noted["first_t"]
    return {"rate": (n - 1) / span, "cpu_us": (noted["last_cpu"] - noted["first_cpu"]) / (n - 1) * 1e6}


def _paced_count(ctx) -> int:
    return int(PACED_RATE * ctx.size(*PACED_SECONDS))


def latency_metrics(samples, window_start: int, rate: float) -> dict[str, float]:
    from ..cases.latency import _result

    return _result([tuple(s) for s in samples], window_start, rate)


def lightbus_latency(ctx, status: PeerStatus) -> dict[str, float]:
    """``lightbus run`` (sync handler) in one process; the peer module fires
    ``bench_timing.timed`` at PACED_RATE in another; latency = handler's
    perf_counter_ns() - fired_ns (CLOCK_MONOTONIC: one clock for both processes)."""
    n = _paced_count(ctx)
    client = bare_client(ctx)
    config_path = _temp_config()
    client.delete(TIMING_STREAM)
    service = unique("bench-lb-latency")
    process = f"{service}-p"
    worker = _lightbus_worker(ctx, status, service, process, "latency", n, config_path)
    try:
        worker.wait_consumer(client, TIMING_STREAM, f"{service}-latency", process)
        fired = run_peer(status, ctx.redis_url, ["--case", "latency", "--n", str(n), "--rate", str(PACED_RATE),
                                                 "--service-name", f"{service}-firer"])
        samples = worker.result(15.0)["samples"]
    finally:
        worker.stop(client, TIMING_STREAM)
        client.delete(TIMING_STREAM)
        client.close()
        config_path.unlink(missing_ok=True)
    return latency_metrics(samples, fired["window_start_ns"], fired["fire_rate"])


# ------------------------------------------------ lightbus_sync, shaped like the peer


def lightbus_sync_latency_process(ctx, rep: int) -> dict[str, float]:
    """The lightbus_sync counterpart of ``lightbus_latency``: ``lightbus-sync run
    --bus benchmarks.apps.latency_bus`` (8 threads) in one process, this process firing
    ``bus.bench_timing.timed.fire(...)`` at PACED_RATE."""
    from ..cases.latency import _paced

    n = _paced_count(ctx)
    client = bare_client(ctx)
    client.delete(TIMING_STREAM)
    service = unique("bench-latency-proc")
    process = f"{service}-p"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), ctx.repo_root) if p)
    for name in ("LIGHTBUS_REDIS_URL", "LIGHTBUS_CONFIG", "LIGHTBUS_SERVICE_NAME", "LIGHTBUS_PROCESS_NAME"):
        env.pop(name, None)
    env["BENCH_LATENCY_N"] = str(n)
    command = lightbus_sync_command() + [
        "--log-level", "WARNING", "run", "--bus", "benchmarks.apps.latency_bus", "--redis-url", ctx.redis_url,
        "--service-name", service, "--process-name", process, "--threads", "8", "--shutdown-timeout", "5",
    ]
    worker = WorkerProcess("lightbus-sync run (latency)", command, env, ctx.repo_root)
    bus = make_bus(ctx, f"{service}-firer")
    clock = time.perf_counter_ns
    try:
        worker.wait_consumer(client, TIMING_STREAM, f"{service}-latency", process)
        timed = bus.bench_timing.timed

        def fire_one(i: int) -> None:
            timed.fire(username="adam", email="adam@example.com", is_admin=False, fired_ns=clock())

        window_start, rate = _paced(n, fire_one, PACED_RATE)
        samples = worker.result(15.0)["samples"]
    finally:
        worker.stop(client, TIMING_STREAM)
        bus.close()
        client.delete(TIMING_STREAM)
        client.close()
    return latency_metrics(samples, window_start, rate)


# --------------------------------------------------------------------------- Dramatiq


def dramatiq_fire(ctx, status: PeerStatus) -> dict[str, float]:
    return run_peer(status, ctx.redis_url, ["--case", "fire", "--n", str(_size(ctx, "dramatiq_fire"))])


def dramatiq_consume(ctx, status: PeerStatus) -> dict[str, float]:
    return run_peer(status, ctx.redis_url, ["--case", "consume", "--n", str(_size(ctx, "dramatiq_consume")),
                                            "--threads", "8"])


def run(ctx, status: PeerStatus, function: str) -> dict[str, float]:
    return globals()[function](ctx, status)


def describe_sizes(quick: bool) -> dict[str, Optional[int]]:
    index = 0 if quick else 1
    sizes = {k: v[index] for k, v in SIZES.items()}
    sizes["latency_events"] = int(PACED_RATE * PACED_SECONDS[index])
    return sizes
