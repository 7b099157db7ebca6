"""Dramatiq 2.x peer (its Redis broker), run by the python of the Dramatiq virtualenv::

    <venv>/bin/python -m benchmarks.peers.dramatiq_2 --redis-url URL --case fire --n N
    <venv>/bin/python -m benchmarks.peers.dramatiq_2 --redis-url URL --case consume --n N

Prints one JSON object on its last line of stdout (the protocol of ``benchmarks.peers``).
The actor and broker are in ``benchmarks/peers/dramatiq_app.py``.

- ``fire``: ``user_created.send(username=, email=, is_admin=)``, one call at a time
  (each is one ``EVALSHA`` of Dramatiq's dispatch script: HSET of the message + RPUSH
  of its id), after ``WARMUP`` calls not counted: ``rate``, ``p50_us``, ``p99_us``,
  ``cpu_us`` (this process's CPU per call);
- ``consume``: N messages sent first (``prefill_rate``, not part of the measurement),
  then ``dramatiq --processes 1 --threads 8 benchmarks.peers.dramatiq_app`` (the real
  CLI, Dramatiq's default middleware and prefetch) drains them; the worker process
  notes the time and its CPU after the 1st and the N-th message processed:
  ``rate`` = (N - 1) / (t_N - t_1), ``cpu_us`` = worker CPU over that span / (N - 1).
  The worker's start-up (fork, imports, connecting) is therefore not counted.

The queue is flushed before and after each run (consume: every key of Dramatiq's
namespace, since the worker is killed once it has noted the N-th message).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .dramatiq_app import QUEUE, broker, user_created

WARMUP = 200
WORKER_TIMEOUT = 240.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def percentile(sorted_values, q):
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(rank, 1)) - 1]


def send() -> None:
    user_created.send(username="adam", email="adam@example.com", is_admin=False)


def case_fire(args) -> dict:
    broker.flush(QUEUE)
    try:
        for _ in range(WARMUP):
            send()
        n = args.n
        latencies = [0] * n
        clock = time.perf_counter_ns
        cpu0 = time.process_time()
        started = clock()
        for i in range(n):
            t0 = clock()
            send()
            latencies[i] = clock() - t0
        elapsed = (clock() - started) / 1e9
        cpu = time.process_time() - cpu0
    finally:
        broker.flush(QUEUE)
    latencies.sort()
    return {
        "rate": n / elapsed,
        "p50_us": percentile(latencies, 50) / 1000,
        "p99_us": percentile(latencies, 99) / 1000,
        "cpu_us": cpu / n * 1e6,
    }


def _become_subreaper() -> None:
    """PR_SET_CHILD_SUBREAPER: the dramatiq worker process, orphaned when its parent
    (the CLI) is killed, becomes our child, so that we reap it and its CPU time is
    counted as this process tree's (the benchmark's "other processes" CPU is the
    machine's minus its own tree's: an orphan reaped by init would count as "other")."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _kill(worker: subprocess.Popen) -> None:
    """SIGKILL the process group that the dramatiq main process leads (it was started
    with start_new_session: the group is the CLI and the worker process it forked),
    and reap them all. Its graceful stop takes ~3 s, which the measurement does not
    need; what it leaves in Redis (acks sets, heartbeats) goes with ``_clear``."""
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the orphans handed to us (subreaper)
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.01)


def _clear() -> None:
    """Delete every key of Dramatiq's namespace (the benchmark's private Redis): no
    message of an earlier run can be requeued into a later one."""
    keys = list(broker.client.scan_iter(match=f"{broker.namespace}:*", count=1000))
    if keys:
        broker.client.delete(*keys)


def case_consume(args) -> dict:
    n = args.n
    _clear()
    started = time.perf_counter()
    for _ in range(n):
        send()
    prefill_rate = n / (time.perf_counter() - started)
    tmp = Path(tempfile.mkdtemp(prefix="bench-dramatiq-"))
    result_path, log_path = tmp / "result.json", tmp / "worker.log"
    env = dict(os.environ, BENCH_REDIS_URL=args.redis_url, BENCH_DRAMATIQ_N=str(n),
               BENCH_DRAMATIQ_RESULT=str(result_path), PYTHONPATH=str(REPO_ROOT))
    command = [str(Path(sys.executable).with_name("dramatiq")), "benchmarks.peers.dramatiq_app",
               "--processes", "1", "--threads", str(args.threads), "--path", str(REPO_ROOT)]
    _become_subreaper()
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(command, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT
        while not result_path.exists():
            if worker.poll() is not None:
                raise RuntimeError(f"dramatiq exited with {worker.returncode}: {log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dramatiq did not process {n} messages in {WORKER_TIMEOUT:g}s: "
                                   f"{log_path.read_text()[-2000:]}")
            time.sleep(0.01)
        noted = json.loads(result_path.read_text())
    finally:
        _kill(worker)
        _clear()
        for path in tmp.iterdir():
            path.unlink()
        tmp.rmdir()
    span = noted["last_t"] - noted["first_t"]
    return {
        "rate": (n - 1) / span,
        "cpu_us": (noted["last_cpu"] - noted["first_cpu"]) / (n - 1) * 1e6,
        "prefill_rate": prefill_rate,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.dramatiq_2")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--case", required=True, choices=["fire", "consume"])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--quick", action="store_true")  # sizes come from --n
    args = parser.parse_args(argv)
    if os.environ.get("BENCH_REDIS_URL") != args.redis_url:
        raise SystemExit("BENCH_REDIS_URL must be --redis-url (the broker is made at import)")
    result = {"fire": case_fire, "consume": case_consume}[args.case](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
