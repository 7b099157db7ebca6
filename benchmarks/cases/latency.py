"""Case ``latency``: fire-to-handler latency at about 1,000 events/s.

A paced loop in the main thread fires ``bench_timing.timed`` events carrying
``fired_ns=time.perf_counter_ns()`` taken as the call starts; the handler, in the same
process, records ``time.perf_counter_ns() - fired_ns``. The first 10% of the window is
warm-up and not counted.

Variants:
- ``bare XADD -> XREADGROUP BLOCK`` (baseline): ``client.xadd`` of pre-encoded fields
  (only ``:fired_ns`` changes) and one reader thread looping on a pipeline of
  ``XACK`` (previous batch) + ``XREADGROUP COUNT 100 BLOCK 100``;
- ``fire -> runner (8 threads)``: ``bus.bench_timing.timed.fire(...)`` and a runner
  with the default 8 workers.
- ``fire -> lightbus-sync run @ 200/s``: two processes, as Lightbus 1.1.2 is measured
  (its fire() cannot sustain 1,000/s): a ``lightbus-sync run`` worker (8 threads,
  ``benchmarks/apps/latency_bus.py``) and this process firing at 200 events/s;
  ``fired_ns`` and the handler's clock are both CLOCK_MONOTONIC. No ratio to the
  baseline (another rate, another process); it is the one compared with the
  ``Lightbus 1.1.2 fire -> lightbus run @ 200/s`` peer variant (``benchmarks/peers/host.py``).
"""

from __future__ import annotations

import threading
import time
import uuid

from ..apps.definitions import KWARGS
from ..common import MAXLEN, TIMING_API, TIMING_STREAM, bare_client, make_bus, stop_runner, unique
from ..framework import Case, Context, Metric, Target, Variant, percentile
from lightbus_sync.wire import encode_event

RATE = 1000
WARMUP_FRACTION = 0.1
DRAIN_TIMEOUT = 15.0


def _count(ctx: Context) -> int:
    return int(RATE * ctx.size(1.0, 5.0))


def _paced(n: int, fire_one, rate: int = RATE) -> tuple[int, float]:
    """Call ``fire_one(i)`` ``n`` times at ``rate`` per second (absolute schedule; after
    a stall of more than 20 ms the schedule restarts instead of bursting). Returns the
    perf_counter_ns() at which the measured window starts, and the achieved rate."""
    interval = 1_000_000_000 // rate
    clock = time.perf_counter_ns
    warmup = int(n * WARMUP_FRACTION)
    window_start = 0
    started = clock()
    next_at = started
    for i in range(n):
        now = clock()
        if next_at > now:
            time.sleep((next_at - now) / 1e9)
        elif now - next_at > 20_000_000:
            next_at = now
        if i == warmup:
            window_start = clock()
        fire_one(i)
        next_at += interval
    return window_start, n / ((clock() - started) / 1e9)


def _result(samples: list[tuple[int, int]], window_start: int, rate: float) -> dict[str, float]:
    latencies = sorted(lat for fired, lat in samples if fired >= window_start)
    return {
        "p50_us": percentile(latencies, 50) / 1000,
        "p99_us": percentile(latencies, 99) / 1000,
        "max_us": latencies[-1] / 1000,
        "fire_rate": rate,
    }


def _wait_for(samples: list, n: int) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while len(samples) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"received {len(samples)} of {n} events")
        time.sleep(0.005)


def bare(ctx: Context, rep: int) -> dict[str, float]:
    n = _count(ctx)
    writer, reader = bare_client(ctx), bare_client(ctx)
    group = unique("bare-latency")
    reader.delete(TIMING_STREAM)
    reader.xgroup_create(TIMING_STREAM, group, id="$", mkstream=True)
    base = encode_event(str(uuid.uuid1()), TIMING_API, "timed", 1, {**KWARGS, "fired_ns": 0})
    samples: list[tuple[int, int]] = []
    stop = threading.Event()
    clock = time.perf_counter_ns

    def read_loop() -> None:
        to_ack: list[bytes] = []
        while not stop.is_set():
            with reader.pipeline(transaction=False) as pipe:
                if to_ack:
                    pipe.xack(TIMING_STREAM, group, *to_ack)
                pipe.xreadgroup(group, "bare-consumer", {TIMING_STREAM: ">"}, count=100, block=100)
                reply = pipe.execute()[-1]
            to_ack = []
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    fired = int(fields[b":fired_ns"])
                    samples.append((fired, clock() - fired))
                    to_ack.append(entry_id)

    thread = threading.Thread(target=read_loop, name="bare-latency-reader", daemon=True)
    thread.start()

    def fire_one(i: int) -> None:
        fields = dict(base)
        fields[":fired_ns"] = str(clock())
        writer.xadd(TIMING_STREAM, fields, maxlen=MAXLEN, approximate=True)

    try:
        window_start, rate = _paced(n, fire_one)
        _wait_for(samples, n)
    finally:
        stop.set()
        thread.join(5)
        writer.close()
        reader.close()
    return _result(samples, window_start, rate)


def runner(ctx: Context, rep: int) -> dict[str, float]:
    n = _count(ctx)
    bus = make_bus(ctx, unique("bench-latency"))
    client = bare_client(ctx)
    client.delete(TIMING_STREAM)
    samples: list[tuple[int, int]] = []
    clock = time.perf_counter_ns

    def handler(username, email, is_admin, fired_ns):
        samples.append((fired_ns, clock() - fired_ns))

    bus.bench_timing.timed.listen(handler, listener_name="latency")
    handle = bus.start_listener_thread()
    try:
        if not handle.wait_until_ready(10):
            raise TimeoutError("runner not ready")

        def fire_one(i: int) -> None:
            bus.bench_timing.timed.fire(username="adam", email="adam@example.com", is_admin=False,
                                        fired_ns=clock())

        window_start, rate = _paced(n, fire_one)
        _wait_for(samples, n)
    finally:
        stop_runner(handle, client, TIMING_STREAM)
        client.close()
        bus.close()
    return _result(samples, window_start, rate)


def _process_variant(ctx: Context, rep: int) -> dict[str, float]:
    from ..peers.host import lightbus_sync_latency_process

    return lightbus_sync_latency_process(ctx, rep)


def build() -> Case:
    return Case(
        name="latency",
        title="latency: fire-to-handler at ~1,000 events/s, same process",
        description=__doc__,
        variants=[
            Variant("bare XADD -> XREADGROUP BLOCK", bare, baseline=True),
            Variant("fire -> runner (8 threads)", runner),
            Variant("fire -> lightbus-sync run @ 200/s", _process_variant, ratio_to_baseline=False, quick_reps=1,
                    description="a lightbus-sync run worker process; fire() at 200/s from this one"),
        ],
        metrics=[
            Metric("p50_us", "latency p50", "us", higher_is_better=False, fmt="{:,.0f}"),
            Metric("p99_us", "latency p99", "us", higher_is_better=False, fmt="{:,.0f}"),
            Metric("max_us", "latency max", "us", higher_is_better=False, fmt="{:,.0f}"),
            Metric("fire_rate", "achieved firing rate", "events/s", ratio=False),
        ],
        targets=[Target("fire -> runner (8 threads)", "p50_us", "<=", 1.5)],
        parameters={"rate": RATE, "seconds": {"quick": 1.0, "full": 5.0}, "warmup_fraction": WARMUP_FRACTION},
    )
