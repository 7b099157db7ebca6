"""Bus module for ``lightbus-sync run --bus benchmarks.apps.latency_bus``: the
lightbus_sync side of the two-process paced latency (``benchmarks/peers/host.py``),
shaped like Lightbus's (``benchmarks/peers/lightbus_bus.py``).

One listener (``latency``) on ``bench_timing.timed``, new events only; each call notes
``time.perf_counter_ns() - fired_ns`` (CLOCK_MONOTONIC: the firing process's clock
too). After ``$BENCH_LATENCY_N`` calls it prints ``BENCH_RESULT {"samples": [...]}``.
"""

import json
import os
import threading
import time

import lightbus_sync

from benchmarks.apps.definitions import BUS_CONFIG

bus = lightbus_sync.create(config=BUS_CONFIG)

N = int(os.environ.get("BENCH_LATENCY_N", "1000"))
_samples = []
_lock = threading.Lock()


def timed(username, email, is_admin, fired_ns):
    latency = time.perf_counter_ns() - fired_ns
    with _lock:  # 8 worker threads
        _samples.append((fired_ns, latency))
        if len(_samples) == N:
            print("BENCH_RESULT " + json.dumps({"samples": _samples}), flush=True)


bus.bench_timing.timed.listen(timed, listener_name="latency")
