"""Case ``fire_many``: ``bus.bench_auth.user_created.fire_many([...100 calls...])``
against a bare redis-py pipeline (``transaction=False``) of 100 ``XADD``s of
pre-encoded fields, sequential, single thread. Rate is events (not batches) per second.
"""

from __future__ import annotations

import time

from ..apps.definitions import KWARGS
from ..common import AUTH_STREAM, MAXLEN, auth_fields, bare_client, make_bus, unique
from ..framework import Case, Context, Metric, Target, Variant, percentile

BATCH = 100
WARMUP = 5


def _measure(call, batches: int) -> dict[str, float]:
    for _ in range(WARMUP):
        call()
    latencies = [0] * batches
    clock = time.perf_counter_ns
    cpu0 = time.process_time()
    started = clock()
    for i in range(batches):
        t0 = clock()
        call()
        latencies[i] = clock() - t0
    elapsed = (clock() - started) / 1e9
    cpu = time.process_time() - cpu0
    latencies.sort()
    return {
        "rate": batches * BATCH / elapsed,
        "cpu_us": cpu / (batches * BATCH) * 1e6,
        "p50_ms": percentile(latencies, 50) / 1e6,
        "p99_ms": percentile(latencies, 99) / 1e6,
    }


def _batches(ctx: Context) -> int:
    return ctx.size(40, 300)


def _setup(ctx: Context) -> None:
    ctx.scratch["client"] = bare_client(ctx)
    ctx.scratch["bus"] = make_bus(ctx, unique("bench-fire-many"))
    ctx.scratch["fields"] = auth_fields()


def _teardown(ctx: Context) -> None:
    ctx.scratch.pop("bus").close()
    client = ctx.scratch.pop("client")
    client.delete(AUTH_STREAM)
    client.close()


def bare(ctx: Context, rep: int) -> dict[str, float]:
    client, fields = ctx.scratch["client"], ctx.scratch["fields"]
    client.delete(AUTH_STREAM)

    def call() -> None:
        with client.pipeline(transaction=False) as pipe:
            for _ in range(BATCH):
                pipe.xadd(AUTH_STREAM, fields, maxlen=MAXLEN, approximate=True)
            pipe.execute()

    return _measure(call, _batches(ctx))


def fire_many(ctx: Context, rep: int) -> dict[str, float]:
    bus = ctx.scratch["bus"]
    ctx.scratch["client"].delete(AUTH_STREAM)
    calls = [dict(KWARGS) for _ in range(BATCH)]
    return _measure(lambda: bus.bench_auth.user_created.fire_many(calls), _batches(ctx))


def build() -> Case:
    return Case(
        name="fire_many",
        title="fire_many(): batches of 100 vs a bare pipelined XADD x100",
        description=__doc__,
        variants=[
            Variant("bare pipeline XADD x100", bare, baseline=True),
            Variant("fire_many(100)", fire_many),
        ],
        metrics=[
            Metric("rate", "rate", "events/s"),
            Metric("p50_ms", "batch p50", "ms", higher_is_better=False, fmt="{:,.2f}"),
            Metric("p99_ms", "batch p99", "ms", higher_is_better=False, fmt="{:,.2f}"),
            Metric("cpu_us", "client CPU per event", "us", higher_is_better=False, fmt="{:,.1f}"),
        ],
        targets=[Target("fire_many(100)", "rate", ">=", 0.85)],
        setup=_setup,
        teardown=_teardown,
        parameters={"batch": BATCH, "batches_per_variant": {"quick": 40, "full": 300}},
    )
