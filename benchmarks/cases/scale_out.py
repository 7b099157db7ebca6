"""Case ``scale_out``: 1, 2 and 4 ``lightbus-sync run`` processes (8 threads each)
sharing one consumer group drain a backlog of N entries (no-op handler); and one
``lightbus-sync run --processes 2`` (a parent and its two runner processes).

"The limit" of N processes is N x one process on a machine with at least N cores
(perfect scaling), and the machine's cores' worth beyond that.

Same start as backlog_memory: the group is created after the backlog (beside a
consumerless group at 0 that holds the trim point, so the runners' trimming keeps the
backlog), the processes start, and once every one of them reads, ``XGROUP SETID <group> 0`` plus a noop entry
hand them the backlog; the clock stops when all N are delivered and acked. CPU over the drain
window (psutil): the redis-server process (% of one core: 100% is Redis's ceiling,
it runs commands on one thread), the runner processes together, and the whole
machine (% of all cores). N = 100,000 (quick: 20,000).

The ``Python floor loop`` variants are the reference for how far processes scale on
this machine at all: 1 and 2 forked processes each running the least a Python consumer
does (the ``consume`` case's floor loop: pipelined ``XACK`` + ``XREADGROUP COUNT 100``,
decode, call), no runner, no threads, in one group.
"""

from __future__ import annotations

import multiprocessing
import time

import psutil
import redis

from lightbus_sync.wire import decode_entry

from ..common import (
    AUTH_STREAM, RunnerProcess, bare_client, cpu_seconds, group_drained, prefill, group_before_backlog, release_backlog, stop_processes,
    unique, wait_for_consumers,
)
from ..framework import Case, Context, Metric, Target, Variant

THREADS = 8
CORES = psutil.cpu_count() or 1


def _n(ctx: Context) -> int:
    return ctx.size(20_000, 100_000)


def _variant(processes: int, supervised: bool = False):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        n = _n(ctx)
        client = bare_client(ctx)
        runners: list[RunnerProcess] = []
        try:
            last_id = prefill(client, AUTH_STREAM, n)
            service = unique("bench-scale")
            group = f"{service}-drain"
            group_before_backlog(client, AUTH_STREAM, group)
            if supervised:
                runners = [RunnerProcess(ctx, service, "scale", threads=THREADS, processes=processes)]
            else:
                runners = [RunnerProcess(ctx, service, f"scale-{i}", threads=THREADS) for i in range(processes)]
            wait_for_consumers(client, AUTH_STREAM, group, runners)
            redis_cpu0 = cpu_seconds(ctx.redis_pid)
            runners_cpu0 = sum(cpu_seconds(r.pid, children=True) for r in runners)
            psutil.cpu_percent(None)
            last_id = release_backlog(client, AUTH_STREAM, group)
            t0 = time.perf_counter()
            while not group_drained(client, AUTH_STREAM, group, last_id):
                for r in runners:
                    r.check_alive()
                if time.perf_counter() - t0 > 300:
                    raise TimeoutError("backlog not drained in 300 s")
                time.sleep(0.02)
            elapsed = time.perf_counter() - t0
            machine = psutil.cpu_percent(None)
            redis_cpu = cpu_seconds(ctx.redis_pid) - redis_cpu0
            runners_cpu = sum(cpu_seconds(r.pid, children=True) for r in runners) - runners_cpu0
        finally:
            stop_processes(runners, client, AUTH_STREAM)
            client.delete(AUTH_STREAM)
            client.close()
        return _drain_metrics(n, elapsed, redis_cpu, runners_cpu, machine)

    return run


def _drain_metrics(n: int, elapsed: float, redis_cpu: float, consumers_cpu: float, machine: float) -> dict[str, float]:
    """A drain's figures: ``n`` entries in ``elapsed`` seconds, the CPU seconds Redis and
    the consumers used meanwhile, and the machine's busy percentage."""
    return {
        "rate": n / elapsed,
        "redis_cpu_pct": 100 * redis_cpu / elapsed,
        "runners_cpu_pct": 100 * consumers_cpu / elapsed,
        "cpu_us": consumers_cpu / n * 1e6,
        "machine_cpu_pct": machine,
    }


def _floor_process(port: int, group: str, consumer: str, start, done) -> None:
    """One process of the Python floor loop: pipelined ``XACK`` (the previous batch) +
    ``XREADGROUP COUNT 100``, each entry decoded and its parameters passed to a no-op
    call, until a read comes back empty; puts (entries, CPU seconds) on ``done``."""
    client = redis.Redis(host="127.0.0.1", port=port)
    start.wait()
    cpu0 = time.process_time()
    handled, to_ack = 0, []
    while True:
        with client.pipeline(transaction=False) as pipe:
            if to_ack:
                pipe.xack(AUTH_STREAM, group, *to_ack)
            pipe.xreadgroup(group, consumer, {AUTH_STREAM: ">"}, count=100)
            reply = pipe.execute()[-1]
        to_ack = []
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                _noop(**decode_entry(fields).parameters)
                to_ack.append(entry_id)
        if not to_ack:
            break
        handled += len(to_ack)
    done.put((handled, time.process_time() - cpu0))


def _noop(**parameters) -> None:
    pass


def _floor_variant(processes: int):
    """``processes`` forked processes of the floor loop sharing one group: how far the
    least a Python consumer does per entry scales on this machine, next to Redis."""

    def run(ctx: Context, rep: int) -> dict[str, float]:
        n = _n(ctx)
        client = bare_client(ctx)
        fork = multiprocessing.get_context("fork")
        start, done = fork.Event(), fork.Queue()
        try:
            prefill(client, AUTH_STREAM, n)
            group = unique("bench-floor-scale")
            client.xgroup_create(AUTH_STREAM, group, id="0")
            workers = [fork.Process(target=_floor_process, args=(ctx.redis_port, group, f"floor-{i}", start, done))
                       for i in range(processes)]
            for worker in workers:
                worker.start()
            time.sleep(0.3)  # connected and waiting
            redis_cpu0 = cpu_seconds(ctx.redis_pid)
            psutil.cpu_percent(None)
            t0 = time.perf_counter()
            start.set()
            results = [done.get(timeout=300) for _ in workers]
            elapsed = time.perf_counter() - t0
            machine = psutil.cpu_percent(None)
            redis_cpu = cpu_seconds(ctx.redis_pid) - redis_cpu0
            for worker in workers:
                worker.join(10)
        finally:
            client.delete(AUTH_STREAM)
            client.close()
        handled = sum(h for h, _ in results)
        if handled != n:
            raise RuntimeError(f"the floor processes handled {handled} of {n}")
        return _drain_metrics(n, elapsed, redis_cpu, sum(c for _, c in results), machine)

    return run


def _summarize(ctx: Context, result: dict) -> list[str]:
    notes = []
    cores = psutil.cpu_count() or 1
    limit = None
    for name, data in result["variants"].items():
        m = data["metrics"]
        if "rate" not in m:
            continue
        rate, redis_pct = m["rate"]["median"], m["redis_cpu_pct"]["median"]
        runners_pct, machine = m["runners_cpu_pct"]["median"], m["machine_cpu_pct"]["median"]
        others = m.get("background_cpu_pct", {}).get("median", 0.0)
        ceiling = f"{rate / (redis_pct / 100):,.0f}" if redis_pct > 0 else "?"
        notes.append(
            f"{name}: {rate:,.0f} events/s; Redis {redis_pct:.0f}% of one core (so Redis alone would "
            f"saturate near {ceiling} events/s); runners {runners_pct:.0f}%; other processes {others:.0f}%; "
            f"machine {machine:.0f}% of {cores} cores"
        )
        if limit is not None:
            continue
        if redis_pct >= 85:
            limit = f"Redis is the limit from {name}: its command thread is {redis_pct:.0f}% busy"
        elif runners_pct + redis_pct >= 85 * cores:
            limit = (f"the runners use the machine's {cores} cores from {name} "
                     f"({runners_pct + redis_pct:.0f}% of a core with Redis), long before Redis is the limit")
        elif machine >= 90:
            limit = (f"the machine's {cores} cores are full from {name} ({machine:.0f}% busy, other processes "
                     f"{others:.0f}% of a core): CPU, not Redis ({redis_pct:.0f}% of a core), is the limit here")
    notes.append(limit or "neither Redis nor the machine's CPUs were saturated")
    floors = [result["variants"].get(f"{FLOOR}, {k} process{'es' if k > 1 else ''}", {}).get("metrics", {})
              for k in (1, 2)]
    if all("rate" in m for m in floors):
        one, two = floors[0]["rate"]["median"], floors[1]["rate"]["median"]
        notes.append(f"the Python floor loop (one thread per process, no runner, waiting for each reply) scales "
                     f"{two / one:.2f}x from 1 to 2 processes here, beside a Redis on the same cores")
    return notes


FLOOR = "Python floor loop"


def build() -> Case:
    return Case(
        name="scale_out",
        title="scale-out: 1/2/4 runner processes in one group draining a backlog",
        description=__doc__,
        variants=[
            Variant("1 process", _variant(1), baseline=True),
            Variant("2 processes", _variant(2), limit=min(2, CORES)),
            Variant("4 processes", _variant(4), limit=min(4, CORES)),
            Variant("--processes 2", _variant(2, supervised=True), limit=min(2, CORES),
                    description="one lightbus-sync run --processes 2"),
            Variant(f"{FLOOR}, 1 process", _floor_variant(1), ratio_to_baseline=False,
                    description="decode + call on one thread, no runner"),
            Variant(f"{FLOOR}, 2 processes", _floor_variant(2), ratio_to_baseline=False,
                    description="two of them in one group"),
        ],
        bare_baseline=False,
        targets=[Target("--processes 2", "rate", ">=", 1.8)],
        metrics=[
            Metric("rate", "drain rate", "events/s"),
            Metric("redis_cpu_pct", "Redis CPU", "% of 1 core", ratio=False, fmt="{:.0f}"),
            Metric("runners_cpu_pct", "runners CPU", "% of 1 core", ratio=False, fmt="{:.0f}"),
            Metric("cpu_us", "runners CPU per event", "us", higher_is_better=False, ratio=False, fmt="{:.1f}"),
            Metric("machine_cpu_pct", "machine CPU", "% of all cores", ratio=False, fmt="{:.0f}"),
        ],
        reps=3,
        quick_reps=1,
        summarize=_summarize,
        parameters={"events": {"quick": 20_000, "full": 100_000}, "threads_per_process": THREADS},
    )
