"""Case ``cluster_scale``: a Redis Cluster of 3 masters (no replicas; its own
``redis-server`` processes, started for this case) carrying the events of three APIs,
their per-API streams either all on **one shard** (three names whose slots one master
serves) or spread over **three shards** (one stream per master).

Each repetition: 2 producer processes (``benchmarks.apps.cluster_fire``) fire N
``user_created`` events with ``fire_many`` batches of 100, round-robin over the three
APIs; then 2 ``lightbus-sync run`` processes (8 threads each, one listener over the
three APIs: ``benchmarks.apps.cluster_drain_bus``) drain them (started first, handed the
backlog with ``XGROUP SETID 0`` plus a noop entry per stream, as in scale_out). CPU of
each master over each phase (psutil): the busiest master's share says how close that
shard is to its ceiling (Redis runs commands on one thread: 100% of a core), and
``rate / busiest share`` estimates the rate at which the busiest shard would saturate.
N = 150,000 (quick: 30,000).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from ..common import consumer_names, cpu_seconds, group_drained, lightbus_sync_command, group_before_backlog, release_backlog, unique
from ..framework import Case, Context, Metric, Variant

PRODUCERS = 2
RUNNERS = 2
THREADS = 8
BATCH = 100
CANDIDATES = [f"bench_cluster.api{i}" for i in range(200)]


def _n(ctx: Context) -> int:
    return ctx.size(30_000, 150_000)


def _setup(ctx: Context) -> None:
    from lightbus_sync.cluster import slot_of
    from lightbus_sync.testing.redis_cluster import RedisCluster

    cluster = RedisCluster(masters=3, replicas_per_master=0, extra_args=("--appendonly", "no"))
    cluster.start()
    by_master: dict[int, list[str]] = {}
    for name in CANDIDATES:
        by_master.setdefault(cluster.master_of_slot(slot_of(f"{name}.*:stream")), []).append(name)
    masters = cluster.masters()
    ctx.scratch["cluster"] = cluster
    ctx.scratch["apis"] = {
        "1 shard": by_master[masters[0]][:3],
        "3 shards": [by_master[port][0] for port in masters],
    }
    ctx.scratch.setdefault("extra", {})["cluster"] = {
        "masters": masters, "apis": ctx.scratch["apis"], "redis_server": ".".join(map(str, cluster.nodes[0].version)),
    }


def _teardown(ctx: Context) -> None:
    cluster = ctx.scratch.pop("cluster", None)
    if cluster is not None:
        cluster.cleanup()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), repo_root) if p)
    for name in ("LIGHTBUS_REDIS_URL", "LIGHTBUS_CONFIG", "LIGHTBUS_SERVICE_NAME", "LIGHTBUS_PROCESS_NAME"):
        env.pop(name, None)
    return env


def _masters_cpu(cluster) -> dict[int, float]:
    return {port: cpu_seconds(cluster.node(port).pid) for port in cluster.masters()}


def _shares(before: dict[int, float], after: dict[int, float], elapsed: float) -> dict[int, float]:
    return {port: 100 * (after[port] - before[port]) / elapsed for port in before}


def _fire(ctx: Context, cluster, names: list[str], n: int) -> tuple[float, dict[int, float]]:
    per_process = n // PRODUCERS
    procs = []
    for index in range(PRODUCERS):
        order = names[index % len(names):] + names[:index % len(names)]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.apps.cluster_fire", cluster.url, str(per_process), str(BATCH), *order],
            cwd=ctx.repo_root, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        ))
    try:
        for proc in procs:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a producer failed to start")
        cpu0 = _masters_cpu(cluster)
        started = time.perf_counter()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            float(proc.stdout.readline())
        elapsed = time.perf_counter() - started
        cpu1 = _masters_cpu(cluster)
    finally:
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return PRODUCERS * per_process / elapsed, _shares(cpu0, cpu1, elapsed)


def _drain(ctx: Context, cluster, client, names: list[str]) -> tuple[float, dict[int, float], int]:
    streams = [f"{name}.*:stream" for name in names]
    service = unique("bench-cluster")
    group = f"{service}-drain"
    for stream in streams:
        group_before_backlog(client, stream, group)
    env = _env()
    env["BENCH_CLUSTER_APIS"] = ",".join(names)
    runners = [
        subprocess.Popen(lightbus_sync_command() + [
            "--log-level", "WARNING", "run", "--bus", "benchmarks.apps.cluster_drain_bus",
            "--redis-url", cluster.url, "--service-name", service, "--process-name", f"cl-{index}",
            "--threads", str(THREADS), "--shutdown-timeout", "5",
        ], cwd=ctx.repo_root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for index in range(RUNNERS)
    ]
    try:
        wanted = {f"cl-{index}" for index in range(RUNNERS)}
        deadline = time.monotonic() + 60
        while not all(wanted <= consumer_names(client, stream, group) for stream in streams):
            if any(r.poll() is not None for r in runners) or time.monotonic() > deadline:
                raise RuntimeError("the runners did not start reading")
            time.sleep(0.05)
        total = sum(client.xlen(stream) for stream in streams)
        cpu0 = _masters_cpu(cluster)
        last = {stream: release_backlog(client, stream, group) for stream in streams}
        started = time.perf_counter()
        while not all(group_drained(client, stream, group, last[stream]) for stream in streams):
            if any(r.poll() is not None for r in runners):
                raise RuntimeError("a runner exited")
            if time.perf_counter() - started > 300:
                raise TimeoutError("backlog not drained in 300 s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        cpu1 = _masters_cpu(cluster)
    finally:
        for runner in runners:
            runner.terminate()
        for runner in runners:
            try:
                runner.wait(15)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
    return total / elapsed, _shares(cpu0, cpu1, elapsed), total


def _variant(label: str):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        cluster = ctx.scratch["cluster"]
        names = ctx.scratch["apis"][label]
        client = cluster.client()
        try:
            for name in names:
                client.delete(f"{name}.*:stream")
            fire_rate, fire_cpu = _fire(ctx, cluster, names, _n(ctx))
            drain_rate, drain_cpu, _ = _drain(ctx, cluster, client, names)
            for name in names:
                client.delete(f"{name}.*:stream")
        finally:
            client.close()
        fire_hot, drain_hot = max(fire_cpu.values()), max(drain_cpu.values())
        return {
            "fire_rate": fire_rate,
            "fire_hot_pct": fire_hot,
            "fire_masters_pct": sum(fire_cpu.values()),
            "fire_ceiling": fire_rate * 100 / fire_hot if fire_hot > 0 else float("nan"),
            "drain_rate": drain_rate,
            "drain_hot_pct": drain_hot,
            "drain_masters_pct": sum(drain_cpu.values()),
            "drain_ceiling": drain_rate * 100 / drain_hot if drain_hot > 0 else float("nan"),
            "machine_cpu_pct": psutil.cpu_percent(None),
        }

    return run


def _summarize(ctx: Context, result: dict) -> list[str]:
    notes = []
    cores = psutil.cpu_count() or 1
    for name, data in result["variants"].items():
        m = data["metrics"]
        if "fire_rate" not in m:
            continue
        med = {k: v["median"] for k, v in m.items()}
        notes.append(
            f"{name}: fire {med['fire_rate']:,.0f} events/s, busiest master {med['fire_hot_pct']:.0f}% of a core "
            f"(all masters {med['fire_masters_pct']:.0f}%) -> it would saturate near {med['fire_ceiling']:,.0f}/s; "
            f"drain {med['drain_rate']:,.0f} events/s, busiest master {med['drain_hot_pct']:.0f}% "
            f"(all {med['drain_masters_pct']:.0f}%) -> near {med['drain_ceiling']:,.0f}/s"
        )
    one, three = result["variants"].get("1 shard", {}), result["variants"].get("3 shards", {})
    if "fire_ceiling" in one.get("metrics", {}) and "fire_ceiling" in three.get("metrics", {}):
        f1, f3 = one["metrics"]["fire_ceiling"]["median"], three["metrics"]["fire_ceiling"]["median"]
        d1, d3 = one["metrics"]["drain_ceiling"]["median"], three["metrics"]["drain_ceiling"]["median"]
        notes.append(
            f"spreading the streams over 3 shards divides the busiest shard's load: its ceiling rises "
            f"{f3 / f1:.1f}x (fire) and {d3 / d1:.1f}x (drain); the rates themselves are bound by the "
            f"{cores} CPU core(s) the producers, runners and Redis share here"
        )
    return notes


def build() -> Case:
    return Case(
        name="cluster_scale",
        title="Redis Cluster: three APIs' streams on 1 shard vs spread over 3 shards (fire, drain)",
        description=__doc__,
        variants=[
            Variant("1 shard", _variant("1 shard"), baseline=True,
                    description="three APIs whose streams one master serves"),
            Variant("3 shards", _variant("3 shards"), description="three APIs, one stream per master"),
        ],
        metrics=[
            Metric("fire_rate", "fire rate (2 processes, fire_many 100)", "events/s"),
            Metric("fire_hot_pct", "fire: busiest master CPU", "% of 1 core", ratio=True, fmt="{:.0f}",
                   higher_is_better=False),
            Metric("fire_masters_pct", "fire: all masters CPU", "% of 1 core", ratio=False, fmt="{:.0f}"),
            Metric("fire_ceiling", "fire: busiest shard saturates near", "events/s"),
            Metric("drain_rate", "drain rate (2 runners x 8 threads)", "events/s"),
            Metric("drain_hot_pct", "drain: busiest master CPU", "% of 1 core", ratio=True, fmt="{:.0f}",
                   higher_is_better=False),
            Metric("drain_masters_pct", "drain: all masters CPU", "% of 1 core", ratio=False, fmt="{:.0f}"),
            Metric("drain_ceiling", "drain: busiest shard saturates near", "events/s"),
            Metric("machine_cpu_pct", "machine CPU", "% of all cores", ratio=False, fmt="{:.0f}"),
        ],
        bare_baseline=False,
        reps=3,
        quick_reps=1,
        setup=_setup,
        teardown=_teardown,
        summarize=_summarize,
        parameters={"events": {"quick": 30_000, "full": 150_000}, "producers": PRODUCERS, "runners": RUNNERS,
                    "threads_per_runner": THREADS, "batch": BATCH, "masters": 3, "replicas": 0},
    )
