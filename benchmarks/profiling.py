"""Profiles behind the benchmark figures (evidence for performance reports).

    python -m benchmarks.profiling fire [--n 20000]          # pyinstrument, one thread
    python -m benchmarks.profiling fire_many [--n 500]       # pyinstrument, batches of 100
    python -m benchmarks.profiling consume [--n 200000] [--threads 8] [--prefetch P]
    python -m benchmarks.profiling fire_costs                # per-step cost of fire(), timeit
    python -m benchmarks.profiling consume_costs             # per-step cost of handling an entry, timeit

``consume`` runs a runner draining N pre-filled entries under ``py-spy record --gil``
(only samples where a thread holds the GIL: where the CPU time of a GIL-bound
process goes) and prints self and inclusive time of the runner's threads, by
function. Each starts its own private redis-server.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from lightbus_sync.testing.redis_server import RedisServer

from .apps.definitions import KWARGS
from .common import AUTH_STREAM, bare_client, make_bus, prefill, stop_runner
from .framework import Context


def _context(server: RedisServer) -> Context:
    return Context(server.url, server.port, server.pid, False, os.getcwd())


def profile_fire(n: int, many: bool) -> None:
    from pyinstrument import Profiler

    with RedisServer() as server:
        bus = make_bus(_context(server), "profile-fire")
        event = bus.bench_auth.user_created
        calls = [dict(KWARGS) for _ in range(100)]
        event.fire(**KWARGS)  # first fire publishes the schema
        profiler = Profiler(interval=0.0002)
        started = time.perf_counter()
        with profiler:
            for _ in range(n):
                if many:
                    event.fire_many(calls)
                else:
                    bus.bench_auth.user_created.fire(username="adam", email="adam@example.com", is_admin=False)
        elapsed = time.perf_counter() - started
        bus.close()
    count = n * (100 if many else 1)
    print(f"{count} events in {elapsed:.2f}s under the profiler ({count / elapsed:,.0f}/s)")
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def fire_costs() -> None:
    """What each step of fire() costs per call, next to a bare pipelined XADD."""
    import timeit
    import uuid

    from lightbus_sync import wire
    from lightbus_sync.message import EventMessage

    from .common import AUTH_STREAM, MAXLEN, auth_fields

    with RedisServer() as server:
        ctx = _context(server)
        bus = make_bus(ctx, "profile-costs")
        event = bus.bench_auth.user_created
        event.fire(**KWARGS)
        definition = event.definition
        plain = dict(KWARGS)
        schemas = getattr(bus, "schemas", None)
        validator = schemas.validator("bench_auth", "user_created") if schemas is not None else None
        steps = [
            ("bus.bench_auth.user_created (attribute look-ups)", lambda: bus.bench_auth.user_created),
            ("EventDefinition.bind (type checks)", lambda: definition.bind((), dict(KWARGS))),
            ("wire.to_plain", (lambda: wire.to_plain("bench_auth", "user_created", plain))
             if hasattr(wire, "to_plain") else None),
            ("schema validator (fastjsonschema, validate.outgoing)", (lambda: validator(plain)) if validator else None),
            ("str(uuid.uuid1()) (event id)", lambda: str(uuid.uuid1())),
            ("str(uuid.uuid4()) (for comparison)", lambda: str(uuid.uuid4())),
            ("wire.encode_event", lambda: wire.encode_event("x", "bench_auth", "user_created", 1, plain)),
            ("EventMessage(...)", lambda: EventMessage("x", "bench_auth", "user_created", 1, plain, "s", "1-0")),
            ("EventClient._encode (check + validate + id + encode)",
             (lambda: event._encode((), dict(KWARGS))) if hasattr(event, "_encode") else None),
            ("  of which the event id (outgoing.next_event_id)", _optional("lightbus_sync.outgoing", "next_event_id")),
        ]
        transport = bus.transport_for("bench_auth")
        command = ("XADD", AUTH_STREAM, "MAXLEN", "~", 100_000, "*", *itertools.chain(*auth_fields().items()))
        pool = transport.client.connection_pool
        connection = pool.get_connection()
        pool.release(connection)
        writers = getattr(transport, "_writers", None)
        steps += [
            ("XADD packed by redis-py (Connection.pack_command)", lambda: connection.pack_command(*command)),
            ("XADD packed by hiredis.pack_command", _optional("hiredis", "pack_command", command)),
            ("pool.get_connection() + release()", lambda: pool.release(pool.get_connection())),
            ("HeldConnections.take() + give_back() (fire's writes)",
             (lambda: writers.give_back(writers.take())) if writers is not None else None),
        ]
        n = 50_000
        for name, step in steps:
            cost = "n/a" if step is None else f"{timeit.timeit(step, number=n) / n * 1e6:6.2f} us"
            print(f"  {name:<56} {cost}")
        client, fields, calls = bare_client(ctx), auth_fields(), [dict(KWARGS) for _ in range(100)]

        def bare() -> None:
            with client.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.xadd(AUTH_STREAM, fields, maxlen=MAXLEN, approximate=True)
                pipe.execute()

        for _ in range(3):
            b = timeit.timeit(bare, number=200) / 20_000 * 1e6
            f = timeit.timeit(lambda: event.fire_many(calls), number=200) / 20_000 * 1e6
            print(f"  per event: bare pipelined XADD {b:5.2f} us, fire_many {f:5.2f} us "
                  f"({f - b:+.2f} us, ratio {b / f:.2f})")
        for _ in range(3):  # one call at a time: CPU per call (the round trip's wait is not CPU)
            b = _cpu_per_call(lambda: client.xadd(AUTH_STREAM, fields, maxlen=100_000, approximate=True), 3000)
            f = _cpu_per_call(lambda: event.fire(**KWARGS), 3000)
            print(f"  CPU per call: bare XADD {b:5.2f} us, fire {f:5.2f} us ({f - b:+.2f} us, ratio {b / f:.2f})")
        bus.close()


def consume_costs() -> None:
    """What each step a runner takes per entry costs, timed alone on a real entry (as
    XREADGROUP returns it): the decode + call steps of the consume case's Python floor
    first, then the runner's own bookkeeping."""
    import queue
    import timeit
    import types

    from lightbus_sync.incoming import IncomingDecoder
    from lightbus_sync.message import EventMessage
    from lightbus_sync.runner.state import InFlight, Stats, Work
    from lightbus_sync.wire import decode_entry, entry_size

    from .common import AUTH_API, AUTH_EVENT, auth_fields

    with RedisServer() as server:
        ctx = _context(server)
        client = bare_client(ctx)
        prefill(client, AUTH_STREAM, 100, auth_fields())
        entries = client.xrange(AUTH_STREAM)
        entry_id, fields = entries[0]
        bus = make_bus(ctx, "profile-consume-costs")
        listener = bus.bench_auth.user_created.listen(lambda username, email, is_admin: None, listener_name="costs")
        binding = listener.binding_for(AUTH_API, AUTH_EVENT)
        decoder = IncomingDecoder(bus.config.api, bus.schemas.validator, bus.local_event)
        raw = decode_entry(fields)
        kwargs = decoder.parameters(raw, binding)
        message = EventMessage(raw.id, raw.api_name, raw.event_name, raw.version, kwargs, AUTH_STREAM, "1-0", 1)
        in_flight, stats, handoff = InFlight(), Stats(), queue.SimpleQueue()
        route = types.SimpleNamespace(group="costs-group")  # what the in-flight set reads of a route
        works = [Work(route, AUTH_STREAM, i, f, 1) for i, f in entries]  # type: ignore[arg-type]

        def track_and_release() -> None:  # per batch of 100, as the reader and acker do
            in_flight.add_many(works)
            in_flight.discard_many(works)

        floor_steps = [
            ("decode_entry (UTF-8, JSON, metadata)", lambda: decode_entry(fields), 1),
            ("IncomingDecoder.parameters (schema skipped: exact, local)", lambda: decoder.parameters(raw, binding), 1),
            ("listener.call (the handler, with its kwargs)", lambda: listener.call(message), 1),
        ]
        runner_steps = [
            ("entry_size (max_entry_size check)", lambda: entry_size(fields), 1),
            ("EventMessage(...)", lambda: EventMessage(raw.id, raw.api_name, raw.event_name, raw.version, kwargs,
                                                       AUTH_STREAM, "1-0", 1), 1),
            ("Work(...) (one per entry read)", lambda: Work(route, AUTH_STREAM, entry_id, fields, 1), 1),  # type: ignore[arg-type]
            ("in-flight add + discard (per entry, in batches of 100)", track_and_release, 100),
            ("queue hand-off put + get (no wake-up)", lambda: (handoff.put(message), handoff.get()), 1),
            ("Stats.add (processed; acked is per batch)", lambda: stats.add("processed"), 1),
        ]
        n = 50_000
        for title, steps in (("the floor's steps", floor_steps), ("the runner's own steps", runner_steps)):
            print(f"{title}:")
            total = 0.0
            for name, step, per in steps:
                cost = min(timeit.repeat(step, number=n // per, repeat=5)) / n * 1e6
                total += cost
                print(f"  {name:<60} {cost:5.2f} us")
            print(f"  {'sum':<60} {total:5.2f} us")
        print(f"  (schema check these entries skip: {min(timeit.repeat(lambda: decoder.validate(raw), number=n, repeat=5)) / n * 1e6:5.2f} us)")
        bus.close()
        client.close()


def _optional(module: str, name: str, *args: Any):
    """``module.name(*args)`` as a step, or None (n/a) where this version has no such thing."""
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return lambda: function(*args)


def _cpu_per_call(call, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - started) / n * 1e6


def _consume_child(n: int, threads: int, prefetch) -> None:
    with RedisServer() as server:
        ctx = _context(server)
        client = bare_client(ctx)
        prefill(client, AUTH_STREAM, n)
        bus = make_bus(ctx, "profile-consume")
        counter = itertools.count(1)
        done = threading.Event()

        def noop(username, email, is_admin):
            if next(counter) == n:
                done.set()

        bus.bench_auth.user_created.listen(noop, listener_name="noop", since="0")
        started = time.perf_counter()
        runner = bus.start_listener_thread(threads=threads, prefetch=prefetch)
        done.wait(600)
        elapsed = time.perf_counter() - started
        stop_runner(runner, client, AUTH_STREAM)
        bus.close()
        print(f"handled {n} in {elapsed:.2f}s under py-spy ({n / elapsed:,.0f}/s), threads={threads} "
              f"prefetch={prefetch or 'default'}", file=sys.stderr)


def summarize_raw(path: str, only: str = "Thread._bootstrap", top: int = 25) -> str:
    """Self and inclusive sample shares by function from py-spy's raw (collapsed) output."""
    self_time: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip().rpartition(" ")
            if only and only not in stack:
                continue
            samples = int(count)
            total += samples
            frames = [_without_line(f) for f in stack.split(";")]
            self_time[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples
    lines = [f"{total} samples of threads holding the GIL (runner threads only)", "", "self:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in self_time.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top + 3)
              if not f.startswith("Thread.")]
    return "\n".join(lines)


def _without_line(frame: str) -> str:
    """``Queue.put (queue.py:152)`` -> ``Queue.put (queue.py)``: by function, not line."""
    name, sep, where = frame.rpartition(" (")
    return f"{name} ({where.split(':')[0].rstrip(')')})" if sep else frame


def profile_consume(n: int, threads: int, prefetch) -> None:
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install -r benchmarks/requirements.txt")
    with tempfile.TemporaryDirectory() as directory:
        raw = os.path.join(directory, "consume.raw")
        command = [py_spy, "record", "--gil", "--rate", "250", "--format", "raw", "--output", raw, "--",
                   sys.executable, "-m", "benchmarks.profiling", "consume", "--child", "--n", str(n),
                   "--threads", str(threads)]
        if prefetch:
            command += ["--prefetch", str(prefetch)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        print(summarize_raw(raw))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("fire", "fire_many", "consume", "fire_costs", "consume_costs"))
    parser.add_argument("--n", type=int, help="fires (fire), batches (fire_many) or events (consume)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--prefetch", type=int)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.what == "fire":
        profile_fire(args.n or 20_000, many=False)
    elif args.what == "fire_many":
        profile_fire(args.n or 500, many=True)
    elif args.what == "fire_costs":
        fire_costs()
    elif args.what == "consume_costs":
        consume_costs()
    elif args.child:
        _consume_child(args.n or 200_000, args.threads, args.prefetch)
    else:
        profile_consume(args.n or 200_000, args.threads, args.prefetch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
