"""Case ``outbox_latency``: commit-to-handler latency through a PostgreSQL outbox at 200
events/s, same process.

A paced loop commits one transaction per event, each firing ``bench_timing.timed``
through ``bus.outbox(connection)``; the time is taken when the commit returns and kept by
event id. A relay thread (woken by ``LISTEN``/``NOTIFY``) publishes; a runner's handler
records ``now - commit time``. The first 10% is warm-up.

Variants:
- ``fire -> runner @ 200/s`` (baseline): plain ``fire()`` (time taken when it returns),
  the same runner and handler;
- ``outbox commit -> relay -> runner @ 200/s``.

The target is absolute: p50 at most 5 ms.
"""

from __future__ import annotations

import time

from ..apps.definitions import KWARGS
from ..common import TIMING_STREAM, bare_client, make_bus, stop_runner, unique
from ..framework import Case, Context, Metric, Target, Variant
from .latency import _paced, _result, _wait_for

RATE = 200


def _count(ctx: Context) -> int:
    return int(RATE * ctx.size(2.0, 6.0))


def _run(ctx: Context, through_outbox: bool) -> dict[str, float]:
    from ..sql import database_engine, empty_outbox

    engine = database_engine()
    n = _count(ctx)
    bus = make_bus(ctx, unique("bench-outbox-latency"))
    client = bare_client(ctx)
    client.delete(TIMING_STREAM)
    clock = time.perf_counter_ns
    sent: dict[str, int] = {}
    samples: list[tuple[int, int]] = []

    def handler(event_message, username, email, is_admin, fired_ns):
        now = clock()
        committed = sent.get(event_message.id)
        if committed is None:  # the handler ran before the loop stored the time: wait for it
            deadline = time.monotonic() + 1
            while committed is None and time.monotonic() < deadline:
                time.sleep(0.0001)
                committed = sent.get(event_message.id)
        samples.append((committed, now - committed))

    bus.bench_timing.timed.listen(handler, listener_name="outbox-latency")
    handle = bus.start_listener_thread()
    relay = bus.start_outbox_relay(engine) if through_outbox else None
    try:
        if not handle.wait_until_ready(10):
            raise TimeoutError("runner not ready")
        time.sleep(0.3)

        def fire_one(i: int) -> None:
            if through_outbox:
                with engine.begin() as connection:
                    message = bus.outbox(connection).bench_timing.timed.fire(**KWARGS, fired_ns=0)
            else:
                message = bus.bench_timing.timed.fire(**KWARGS, fired_ns=0)
            sent[message.id] = clock()

        window_start, rate = _paced(n, fire_one, RATE)
        _wait_for(samples, n)
    finally:
        if relay is not None:
            relay.stop()
        stop_runner(handle, client, TIMING_STREAM)
        client.close()
        bus.close()
        empty_outbox(engine)
    return _result(samples, window_start, rate)


def build() -> Case:
    return Case(
        name="outbox_latency",
        title="commit -> handler latency through a PostgreSQL outbox at 200 events/s",
        description=__doc__,
        variants=[
            Variant("fire -> runner @ 200/s", lambda ctx, rep: _run(ctx, False), baseline=True),
            Variant("outbox commit -> relay -> runner @ 200/s", lambda ctx, rep: _run(ctx, True)),
        ],
        metrics=[
            Metric("p50_us", "latency p50", "us", higher_is_better=False),
            Metric("p99_us", "latency p99", "us", higher_is_better=False),
            Metric("max_us", "latency max", "us", higher_is_better=False),
            Metric("fire_rate", "achieved rate", "events/s", ratio=False),
        ],
        targets=[Target("outbox commit -> relay -> runner @ 200/s", "p50_us", "<=", 5000, absolute=True,
                        note="5 ms")],
        reps=3,
        quick_reps=2,
        parameters={"rate": RATE, "seconds": {"quick": 2.0, "full": 6.0}},
    )
