"""Lightbus 1.1.2 peer: the producer side, run by the python of the Lightbus virtualenv::

    <venv>/bin/python -m benchmarks.peers.lightbus_1_1_2 --redis-url URL --case fire --n N
    <venv>/bin/python -m benchmarks.peers.lightbus_1_1_2 --redis-url URL --case latency --n N --rate R

Prints one JSON object on its last line of stdout (the protocol of ``benchmarks.peers``).

- ``fire``: ``bus.bench_auth.user_created.fire(username=, email=, is_admin=)`` with
  Lightbus's sync API (each call runs Lightbus's event loop until the XADD is done),
  one call at a time, as ``benchmarks/cases/fire.py`` measures lightbus_sync's:
  ``rate``, ``p50_us``, ``p99_us``, ``cpu_us`` (this process's CPU per call), after
  ``WARMUP`` calls that are not counted;
- ``latency``: the firing half of the latency case: ``bench_timing.timed`` events
  carrying ``fired_ns=time.perf_counter_ns()`` (CLOCK_MONOTONIC, the same clock in every
  process of the machine), paced at ``--rate`` per second; the handler runs in a
  ``lightbus run`` worker (``benchmarks/peers/lightbus_bus.py``) started by the
  benchmark process, which computes the latencies. Prints ``window_start_ns`` (the
  first 10% are warm-up) and ``fire_rate``.

The consume case has no producer here: the benchmark process pre-fills the stream
with lightbus_sync (the same wire format) and runs ``lightbus run`` on it.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import lightbus

from .lightbus_apis import BenchAuthApi, BenchTimingApi
from .lightbus_config import lightbus_config

WARMUP = 100
WARMUP_FRACTION = 0.1  # as benchmarks/cases/latency.py


def percentile(sorted_values, q):
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(rank, 1)) - 1]


def make_bus(redis_url: str, service_name: str, api) -> "lightbus.BusPath":
    bus = lightbus.create(config=lightbus_config(redis_url), service_name=service_name,
                          process_name=f"{service_name}-proc")
    bus.client.register_api(api)
    return bus


def case_fire(args) -> dict:
    bus = make_bus(args.redis_url, args.service_name, BenchAuthApi())
    event = bus.bench_auth.user_created

    def call():
        event.fire(username="adam", email="adam@example.com", is_admin=False)

    try:
        for _ in range(WARMUP):
            call()
        n = args.n
        latencies = [0] * n
        clock = time.perf_counter_ns
        cpu0 = time.process_time()
        started = clock()
        for i in range(n):
            t0 = clock()
            call()
            latencies[i] = clock() - t0
        elapsed = (clock() - started) / 1e9
        cpu = time.process_time() - cpu0
    finally:
        bus.client.close()
    latencies.sort()
    return {
        "rate": n / elapsed,
        "p50_us": percentile(latencies, 50) / 1000,
        "p99_us": percentile(latencies, 99) / 1000,
        "cpu_us": cpu / n * 1e6,
    }


def case_latency(args) -> dict:
    """Fire ``n`` events at ``rate``/s (the schedule of benchmarks/cases/latency.py)."""
    bus = make_bus(args.redis_url, args.service_name, BenchTimingApi())
    event = bus.bench_timing.timed
    n, rate = args.n, args.rate
    interval = 1_000_000_000 // rate
    clock = time.perf_counter_ns
    warmup = int(n * WARMUP_FRACTION)
    window_start = 0
    try:
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
            event.fire(username="adam", email="adam@example.com", is_admin=False, fired_ns=clock())
            next_at += interval
        achieved = n / ((clock() - started) / 1e9)
    finally:
        bus.client.close()
    return {"window_start_ns": window_start, "fire_rate": achieved}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.lightbus_1_1_2")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--case", required=True, choices=["fire", "latency"])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--service-name", default="bench-lightbus-peer")
    parser.add_argument("--quick", action="store_true")  # sizes come from --n
    args = parser.parse_args(argv)
    result = {"fire": case_fire, "latency": case_latency}[args.case](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
