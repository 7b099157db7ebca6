"""Case ``handler_io``: a handler that sleeps 5 ms (stand-in for a database or HTTP
call), run with 1, 8 and 32 worker threads. The ideal is threads x 200 events/s;
8 threads should approach 8x one thread (the ratio column is vs 1 thread).

Each variant drains threads x 200 x D events (about D seconds if ideal).
"""

from __future__ import annotations

import time

from ..common import AUTH_STREAM, auth_fields, bare_client
from ..framework import Case, Context, Metric, Target, Variant
from .consume import drain_with_runner

SLEEP = 0.005


def _seconds(ctx: Context) -> float:
    return ctx.size(0.6, 2.5)


def _setup(ctx: Context) -> None:
    ctx.scratch["client"] = bare_client(ctx)
    ctx.scratch["fields"] = auth_fields()


def _teardown(ctx: Context) -> None:
    client = ctx.scratch.pop("client")
    client.delete(AUTH_STREAM)
    client.close()


def _variant(threads: int):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        ideal = threads / SLEEP
        n = max(int(ideal * _seconds(ctx)), 50)
        result = drain_with_runner(ctx, n, threads, handler_body=lambda: time.sleep(SLEEP))
        result["efficiency"] = 100 * result["rate"] / ideal
        return result

    return run


def build() -> Case:
    return Case(
        name="handler_io",
        title="handler with I/O: 5 ms sleeping handler, 1/8/32 threads",
        description=__doc__,
        variants=[
            Variant("runner threads=1", _variant(1), baseline=True),
            Variant("runner threads=8", _variant(8), limit=8),
            Variant("runner threads=32", _variant(32), limit=32),
        ],
        bare_baseline=False,
        metrics=[
            Metric("rate", "handled", "events/s"),
            Metric("efficiency", "of ideal (threads/5ms)", "%", ratio=False, fmt="{:.1f}"),
        ],
        targets=[
            Target("runner threads=8", "rate", ">=", 7.0, note="approach 8x"),
        ],
        setup=_setup,
        teardown=_teardown,
        parameters={"sleep_s": SLEEP, "seconds_if_ideal": {"quick": 0.6, "full": 2.5}},
    )
