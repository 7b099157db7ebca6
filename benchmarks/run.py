"""``python -m benchmarks [--quick] [--case NAME ...] [--reps N] [--json PATH] [--ref GIT_REF]``

Starts a private redis-server (``RedisServer``, appendonly off, a free 127.0.0.1
port; never the machine's Redis), runs the cases (each variant several times,
interleaved with its baseline on the same Redis), prints a table of medians with
min/max and ratios to the baseline, and writes the JSON results
(``benchmarks/results/latest.json`` unless ``--json``).

``--ref REF`` benchmarks the library as committed at REF instead of the work tree
(which others may be editing): ``git archive REF lightbus_sync`` and a copy of
benchmarks/ go to a temporary directory, and the run re-executes there.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

import lightbus_sync
from lightbus_sync.testing.redis_server import RedisServer

from .cases import CASE_MODULES, build_cases, peers_for
from .peers import prepare as prepare_peers
from .framework import BUSY_MACHINE_PCT, Context, CpuWindow, format_table, run_case

HERE = Path(__file__).resolve().parent
#: Where lightbus_sync and benchmarks/ are imported from (a snapshot dir with --ref).
REPO_ROOT = HERE.parent
#: The git checkout (differs from REPO_ROOT inside a --ref snapshot).
GIT_ROOT = Path(os.environ.get("BENCH_GIT_ROOT", REPO_ROOT))
DEFAULT_JSON = GIT_ROOT / "benchmarks" / "results" / "latest.json"


def log(message: str) -> None:
    print(message, flush=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=GIT_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(server: RedisServer) -> dict[str, Any]:
    try:
        import psutil

        memory_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory_gib = None
    import importlib.util

    parser = "hiredis" if importlib.util.find_spec("hiredis") else "python (no hiredis)"
    snapshot = os.environ.get("BENCH_SNAPSHOT")
    dirty = "" if snapshot else _git("status", "--porcelain", "--", "lightbus_sync")
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_server": ".".join(map(str, server.version)),
        "redis_server_executable": server.executable,
        "redis_py": redis.__version__,
        "redis_py_parser": parser,
        "lightbus_sync": lightbus_sync.__version__,
        "library": f"git {snapshot} (--ref snapshot)" if snapshot else "work tree",
        "git_commit": snapshot or _git("rev-parse", "--short", "HEAD"),
        "library_tree_dirty": bool(dirty),
    }


def wait_quiet(redis_pid: int, seconds: float) -> None:
    """Wait until other processes use < BUSY_MACHINE_PCT of a core over 1 s (or give up)."""
    deadline = time.monotonic() + seconds
    while True:
        window = CpuWindow(redis_pid)
        time.sleep(1.0)
        busy = window.background_pct()
        if busy < BUSY_MACHINE_PCT:
            return
        if time.monotonic() >= deadline:
            log(f"   (machine still busy: other processes at {busy:.0f}% of a core; going on)")
            return
        log(f"   (waiting: other processes at {busy:.0f}% of a core)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repetitions (< 60 s)")
    parser.add_argument("--case", action="append", metavar="NAME",
                        help=f"run only this case (repeatable): {', '.join(CASE_MODULES)}")
    parser.add_argument("--reps", type=int, help="repetitions per variant (overrides each case's default)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each case, wait up to SECONDS for other processes to use < 20%% of a core "
                             "(the machine may be shared)")
    parser.add_argument("--ref", metavar="GIT_REF",
                        help="benchmark lightbus_sync as committed at GIT_REF (e.g. HEAD), not the work tree")
    parser.add_argument("--no-peers", action="store_true",
                        help="do not run the peers (Lightbus 1.1.2, Dramatiq 2.x): their rows say so")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser.parse_args(argv)


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def run_at_ref(args: argparse.Namespace, argv: list[str]) -> int:
    """Re-run this command against ``git archive REF lightbus_sync`` in a temp dir."""
    sha = _git("rev-parse", "--short", args.ref)
    if not sha:
        raise SystemExit(f"unknown git ref {args.ref!r}")
    archive = subprocess.run(["git", "archive", sha, "lightbus_sync"], cwd=GIT_ROOT, capture_output=True,
                             check=True).stdout
    snapshot = Path(tempfile.mkdtemp(prefix="lightbus-sync-bench-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(snapshot, filter="data")
            else:
                tar.extractall(snapshot)
        shutil.copytree(HERE, snapshot / "benchmarks",
                        ignore=shutil.ignore_patterns("results", "__pycache__", ".venvs"))
        env = dict(os.environ, PYTHONPATH=str(snapshot), BENCH_SNAPSHOT=sha, BENCH_GIT_ROOT=str(GIT_ROOT))
        rest = _without_option(_without_option(argv, "--ref"), "--json")
        env["BENCH_COMMAND"] = " ".join(["python -m benchmarks", *argv])
        log(f"benchmarking lightbus_sync at {args.ref} ({sha}) from {snapshot}")
        return subprocess.call([sys.executable, "-m", "benchmarks", *rest, "--json", str(args.json.resolve())],
                               cwd=snapshot, env=env)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.ref and not os.environ.get("BENCH_SNAPSHOT"):
        return run_at_ref(args, argv)
    names = None
    if args.case:
        names = [n.strip().replace("-", "_") for item in args.case for n in item.split(",") if n.strip()]
    if args.list:
        for case in build_cases(names):
            log(f"{case.name:<16} {case.title}")
        return 0
    skip_peers = "--no-peers" if args.no_peers else ""
    peers = prepare_peers(peers_for(names), skip=skip_peers, log=log)
    cases = build_cases(names, peers)
    if args.reps:
        for case in cases:
            case.reps = case.quick_reps = args.reps
            for variant in case.variants:
                variant.reps = variant.quick_reps = None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    mode = "quick" if args.quick else "full"
    results: dict[str, Any] = {}
    with RedisServer(appendonly=False) as server:
        machine = machine_info(server)
        machine["peers"] = {
            key: {"title": st.title, "venv": str(st.venv.directory) if st.venv else None,
                  "versions": st.venv.versions if st.venv else "", "problem": st.problem}
            for key, st in peers.items()
        }
        if peers:
            from .peers.host import describe_sizes

            machine["peers"]["events_per_repetition"] = describe_sizes(args.quick)
        log(f"lightbus_sync benchmarks ({mode}): Redis {machine['redis_server']} at {server.url} (pid {server.pid}); "
            f"Python {machine['python']}; {machine['nproc']} x {machine['cpu_model']}")
        ctx = Context(redis_url=server.url, redis_port=server.port, redis_pid=server.pid, quick=args.quick,
                      repo_root=str(REPO_ROOT))
        for case in cases:
            if args.wait_quiet:
                wait_quiet(server.pid, args.wait_quiet)
            log(f"\n== {case.name}: {case.title}")
            case_started = time.monotonic()
            results[case.name] = run_case(case, ctx, log)
            server.flushall()
            log(f"   ({time.monotonic() - case_started:.1f}s)")
    elapsed = time.monotonic() - started
    table = format_table(cases, results)
    log(f"\n{table}\n")
    document = {
        "mode": mode,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(elapsed, 1),
        "command": os.environ.get("BENCH_COMMAND") or " ".join(["python -m benchmarks", *argv]),
        "machine": machine,
        "cases": results,
        "table": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    log(f"total {elapsed:.0f}s; results written to {args.json}")
    return 0
