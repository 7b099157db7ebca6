"""Case ``consume``: drain a pre-filled stream of N user_created entries.

Variants:
- ``bare XREADGROUP+XACK`` (baseline): one thread; each round trip is one pipeline
  of ``XACK`` (the previous batch) + ``XREADGROUP COUNT 100``; a no-op handler is
  called per entry (raw fields, nothing decoded);
- ``runner threads=T`` (T = 1, 8, 32): ``bus.start_listener_thread(threads=T)`` with
  ``batch_size=100`` and a no-op handler taking the event's parameters; the clock
  runs from ``start_listener_thread`` until the handler has been called N times
  (``rate``), and until the acker has acked all N (``rate_acked``);
  ``cpu_us`` is this process's CPU time (all threads) over that window, per event:
  steadier than the rate on a shared machine;
- ``decode+call loop (the Python floor)``: the bare loop, plus the least any runner
  written in Python does per entry: decode the entry (``wire.decode_entry``), take the
  handler's keyword arguments (``EventBinding.exact_kwargs``, no cast needed) and call
  the handler with them. One thread, no leases, no hand-off, no counters: what is
  left between the runner and this loop is the runner's own bookkeeping; what is
  left between this loop and the bare one is the work of decoding in Python.
"""

from __future__ import annotations

import itertools
import threading
import time

from lightbus_sync.wire import decode_entry

from ..common import AUTH_API, AUTH_EVENT, AUTH_STREAM, auth_fields, bare_client, make_bus, prefill, stop_runner, unique
from ..framework import Case, Context, Metric, Target, Variant

TIMEOUT = 180.0


def _n(ctx: Context) -> int:
    return ctx.size(6_000, 50_000)


def _setup(ctx: Context) -> None:
    ctx.scratch["client"] = bare_client(ctx)
    ctx.scratch["fields"] = auth_fields()


def _teardown(ctx: Context) -> None:
    client = ctx.scratch.pop("client")
    client.delete(AUTH_STREAM)
    client.close()


def _noop(fields) -> None:
    pass


def _drain_loop(ctx: Context, what: str, per_entry) -> dict[str, float]:
    """Pre-fill N entries and drain them on this thread: one pipeline of ``XACK`` (the
    previous batch) + ``XREADGROUP COUNT 100`` per round trip, ``per_entry(fields)``
    called for each entry."""
    client, n = ctx.scratch["client"], _n(ctx)
    prefill(client, AUTH_STREAM, n, ctx.scratch["fields"])
    group = unique(what)
    client.xgroup_create(AUTH_STREAM, group, id="0")
    cpu0 = time.process_time()
    started = time.perf_counter()
    handled = 0
    to_ack: list[bytes] = []
    while handled < n:
        with client.pipeline(transaction=False) as pipe:
            if to_ack:
                pipe.xack(AUTH_STREAM, group, *to_ack)
            pipe.xreadgroup(group, f"{what}-consumer", {AUTH_STREAM: ">"}, count=100)
            reply = pipe.execute()[-1]
        to_ack = []
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                per_entry(fields)
                to_ack.append(entry_id)
        handled += len(to_ack)
        if time.perf_counter() - started > TIMEOUT:
            raise TimeoutError(f"{what} loop handled {handled} of {n}")
    handled_s = time.perf_counter() - started
    client.xack(AUTH_STREAM, group, *to_ack)
    acked_s = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    return {"rate": n / handled_s, "rate_acked": n / acked_s, "cpu_us": cpu / n * 1e6}


def bare(ctx: Context, rep: int) -> dict[str, float]:
    return _drain_loop(ctx, "bare", _noop)


def floor(ctx: Context, rep: int) -> dict[str, float]:
    bus = make_bus(ctx, unique("bench-floor"))

    def handler(username, email, is_admin):
        pass

    listener = bus.bench_auth.user_created.listen(handler, listener_name="floor")
    binding = listener.binding_for(AUTH_API, AUTH_EVENT)

    def decode_and_call(fields) -> None:
        listener.handler(**binding.exact_kwargs(decode_entry(fields).parameters))

    try:
        return _drain_loop(ctx, "floor", decode_and_call)
    finally:
        bus.close()


def drain_with_runner(ctx: Context, n: int, threads: int, handler_body=None, prefetch=None) -> dict[str, float]:
    """Pre-fill ``n`` entries, run a fresh runner with ``threads`` workers until its
    handler ran ``n`` times and the acker acked them; return rates."""
    client = ctx.scratch["client"]
    prefill(client, AUTH_STREAM, n, ctx.scratch["fields"])
    bus = make_bus(ctx, unique("bench-consume"))
    counter = itertools.count(1)
    done = threading.Event()

    def handler(username, email, is_admin):
        if handler_body is not None:
            handler_body()
        if next(counter) == n:
            done.set()

    bus.bench_auth.user_created.listen(handler, listener_name="noop", since="0")
    cpu0 = time.process_time()
    started = time.perf_counter()
    runner = bus.start_listener_thread(threads=threads, prefetch=prefetch)
    try:
        if not done.wait(TIMEOUT):
            raise TimeoutError(f"runner handled {next(counter) - 1} of {n} in {TIMEOUT:g}s")
        handled_s = time.perf_counter() - started
        while runner.stats.get("acked") < n:
            if time.perf_counter() - started > TIMEOUT:
                raise TimeoutError(f"runner acked {runner.stats.get('acked')} of {n}")
            time.sleep(0.0005)
        acked_s = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    finally:
        stop_runner(runner, client, AUTH_STREAM)
        bus.close()
    return {"rate": n / handled_s, "rate_acked": n / acked_s, "cpu_us": cpu / n * 1e6}


def _runner_variant(threads: int, prefetch=None):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        return drain_with_runner(ctx, _n(ctx), threads, prefetch=prefetch)

    return run


def build() -> Case:
    return Case(
        name="consume",
        title="consume: runner throughput draining N pre-filled entries (no-op handler)",
        description=__doc__,
        variants=[
            Variant("bare XREADGROUP+XACK", bare, baseline=True),
            Variant("runner threads=1", _runner_variant(1)),
            Variant("runner threads=8", _runner_variant(8)),
            Variant("runner threads=32", _runner_variant(32)),
            Variant("decode+call loop (the Python floor)", floor),
        ],
        metrics=[  # also rate_acked (until the acker acked all N), in the JSON
            Metric("rate", "handled", "events/s"),
            Metric("cpu_us", "process CPU per event", "us", higher_is_better=False, fmt="{:,.1f}"),
        ],
        targets=[Target("runner threads=8", "rate", ">=", 0.8)],
        setup=_setup,
        teardown=_teardown,
        parameters={"events": {"quick": 6_000, "full": 50_000}, "batch_size": 100},
    )
