"""Case ``backlog_memory``: does a runner's memory stay flat while it drains a huge
backlog? (The lanes are bounded: ``prefetch`` = 2 x threads entries read ahead.)

Steps: pre-fill the stream with N entries (pipelined XADD of pre-encoded fields);
create the listener's consumer group at ``$`` (after the backlog); start
``lightbus-sync run --bus benchmarks.apps.drain_bus --threads 8`` as a subprocess;
once its consumer shows up in the group, sample its RSS for 1 s (``idle``); then
``XGROUP SETID <group> 0`` plus one noop entry (to wake the blocked reader) hand it
the whole backlog at once. RSS is sampled every 0.2 s (psutil, process and children)
until the group has every entry delivered and acked. N = 1,000,000 (quick: 100,000).
"""

from __future__ import annotations

import statistics
import time

from ..common import (
    AUTH_STREAM, RunnerProcess, bare_client, group_drained, prefill, process_tree_rss, group_before_backlog, release_backlog,
    stop_processes, unique, wait_for_consumers,
)
from ..framework import Case, Context, Metric, Target, Variant

SAMPLE_EVERY = 0.2
MB = 1024 * 1024


def _n(ctx: Context) -> int:
    return ctx.size(100_000, 1_000_000)


def run(ctx: Context, rep: int) -> dict[str, float]:
    n = _n(ctx)
    client = bare_client(ctx)
    try:
        started = time.perf_counter()
        last_id = prefill(client, AUTH_STREAM, n)
        prefill_s = time.perf_counter() - started
        redis_mb = client.info("memory")["used_memory"] / MB
        service = unique("bench-backlog")
        group = f"{service}-drain"
        group_before_backlog(client, AUTH_STREAM, group)
        runner = RunnerProcess(ctx, service, "backlog-0", threads=8)
        try:
            wait_for_consumers(client, AUTH_STREAM, group, [runner])
            idle_samples = []
            for _ in range(6):
                idle_samples.append(process_tree_rss(runner.pid))
                time.sleep(SAMPLE_EVERY)
            idle = statistics.median(idle_samples)
            timeline: list[tuple[float, float]] = []
            last_id = release_backlog(client, AUTH_STREAM, group)
            t0 = time.perf_counter()
            next_sample = t0
            peak = idle
            while True:
                now = time.perf_counter()
                if now >= next_sample:
                    rss = process_tree_rss(runner.pid)
                    peak = max(peak, rss)
                    timeline.append((round(now - t0, 2), round(rss / MB, 1)))
                    next_sample += SAMPLE_EVERY
                if group_drained(client, AUTH_STREAM, group, last_id):
                    break
                runner.check_alive()
                if now - t0 > 600:
                    raise TimeoutError("backlog not drained in 600 s")
                time.sleep(0.05)
            drain_s = time.perf_counter() - t0
            after = process_tree_rss(runner.pid)
        finally:
            stop_processes([runner], client, AUTH_STREAM)
        ctx.scratch.setdefault("extra", {}).setdefault("rss_timelines_mb", []).append(timeline[::5])
        return {
            "idle_mb": idle / MB,
            "peak_mb": peak / MB,
            "growth_mb": (peak - idle) / MB,
            "after_mb": after / MB,
            "rate": n / drain_s,
            "prefill_rate": n / prefill_s,
            "redis_used_mb": redis_mb,
        }
    finally:
        client.delete(AUTH_STREAM)
        client.close()


def build() -> Case:
    return Case(
        name="backlog_memory",
        title="backlog memory: RSS of a runner subprocess draining a 1M-entry backlog",
        description=__doc__,
        variants=[Variant("lightbus-sync run (8 threads)", run)],
        metrics=[
            Metric("idle_mb", "RSS idle", "MB", ratio=False, fmt="{:,.1f}"),
            Metric("peak_mb", "RSS peak", "MB", ratio=False, fmt="{:,.1f}"),
            Metric("growth_mb", "RSS peak - idle", "MB", ratio=False, fmt="{:,.1f}"),
            Metric("after_mb", "RSS after drain", "MB", ratio=False, fmt="{:,.1f}"),
            Metric("rate", "drain rate", "events/s", ratio=False),
            Metric("prefill_rate", "pre-fill (pipelined XADD)", "events/s", ratio=False),
            Metric("redis_used_mb", "Redis used_memory", "MB", ratio=False, fmt="{:,.0f}"),
        ],
        targets=[Target("lightbus-sync run (8 threads)", "growth_mb", "<", 100, absolute=True, note="MB")],
        reps=1,
        quick_reps=1,
        parameters={"events": {"quick": 100_000, "full": 1_000_000}, "threads": 8, "sample_every_s": SAMPLE_EVERY},
    )
