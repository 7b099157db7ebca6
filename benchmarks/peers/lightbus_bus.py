"""Bus module for the real ``lightbus run`` (Lightbus 1.1.2, its own virtualenv)::

    lightbus run --bus benchmarks.peers.lightbus_bus --config CONFIG.json \\
        --service-name S --process-name P --log-level warning --only events

with ``BENCH_LB_MODE`` and ``BENCH_LB_N`` in the environment (set by
``benchmarks/peers/host.py``). One listener with a no-op *sync* handler (Lightbus runs
each call of a sync handler in a thread of its own, as any Lightbus user's would be):

- ``drain``: on ``bench_auth.user_created`` from the start of the stream
  (``bus_options={"since": "0"}``), pre-filled by lightbus_sync. At the first and the
  ``N``-th call it notes ``time.perf_counter()`` and ``time.process_time()`` (the
  whole process's CPU); after the ``N``-th it prints them;
- ``latency``: on ``bench_timing.timed`` (new events only), each call notes
  ``time.perf_counter_ns() - fired_ns``; after ``N`` calls it prints them all.

The output line starts with ``BENCH_RESULT `` followed by JSON. Both APIs are
registered here (this process is an authority on them), so incoming events are
validated against their local schema, as lightbus_sync's own runner does.
"""

import itertools
import json
import os
import time

import lightbus

from benchmarks.peers.lightbus_apis import BenchAuthApi, BenchTimingApi

bus = lightbus.create()
bus.client.register_api(BenchAuthApi())
bus.client.register_api(BenchTimingApi())

MODE = os.environ.get("BENCH_LB_MODE", "drain")
N = int(os.environ.get("BENCH_LB_N", "1000"))

_count = itertools.count(1)
_first = {}
_samples = []


def _report(result: dict) -> None:
    print("BENCH_RESULT " + json.dumps(result), flush=True)


def drain(event_message, username, email, is_admin):
    i = next(_count)
    if i == 1:
        _first["t"], _first["cpu"] = time.perf_counter(), time.process_time()
    elif i == N:
        _report({"first_t": _first["t"], "first_cpu": _first["cpu"],
                 "last_t": time.perf_counter(), "last_cpu": time.process_time(), "n": N})


def timed(event_message, username, email, is_admin, fired_ns):
    _samples.append((fired_ns, time.perf_counter_ns() - fired_ns))
    if len(_samples) == N:
        _report({"samples": _samples})


@bus.client.on_start()
def start_listening(client):
    if MODE == "drain":
        bus.bench_auth.user_created.listen(drain, listener_name="drain", bus_options={"since": "0"})
    else:
        bus.bench_timing.timed.listen(timed, listener_name="latency")
