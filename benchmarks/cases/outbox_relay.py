"""Case ``outbox_relay``: how fast a relay empties a PostgreSQL outbox into Redis,
against ``fire_many`` of 100 straight to Redis.

Variants (events per second, single thread):
- ``fire_many(100)`` (baseline): ``bus.bench_auth.user_created.fire_many([...100...])``
  in a loop, as the case ``fire_many``;
- ``relay``: N rows committed beforehand (``fire_many`` through the outbox, 100 per
  transaction, not timed), then ``relay.relay_all()`` timed: claim (advisory lock,
  ``FOR UPDATE SKIP LOCKED``), one Lua script per batch of 1,000 (dedup + XADD), delete,
  commit.
"""

from __future__ import annotations

import time

from lightbus_sync.keys import outbox_relayed_key

from ..apps.definitions import KWARGS
from ..common import AUTH_STREAM, bare_client, make_bus, unique
from ..framework import Case, Context, Metric, Target, Variant

BATCH = 100


def _n(ctx: Context) -> int:
    return ctx.size(5_000, 30_000)


def _setup(ctx: Context) -> None:
    from ..sql import database_engine

    ctx.scratch["engine"] = database_engine()
    ctx.scratch["bus"] = make_bus(ctx, unique("bench-outbox-relay"))
    ctx.scratch["client"] = bare_client(ctx)


def _teardown(ctx: Context) -> None:
    from ..sql import empty_outbox

    empty_outbox(ctx.scratch.pop("engine"))
    ctx.scratch.pop("bus").close()
    client = ctx.scratch.pop("client")
    client.delete(AUTH_STREAM, outbox_relayed_key(AUTH_STREAM))
    client.close()


def fire_many(ctx: Context, rep: int) -> dict[str, float]:
    bus = ctx.scratch["bus"]
    calls = [dict(KWARGS) for _ in range(BATCH)]
    batches = _n(ctx) // BATCH
    started = time.perf_counter()
    for _ in range(batches):
        bus.bench_auth.user_created.fire_many(calls)
    elapsed = time.perf_counter() - started
    ctx.scratch["client"].delete(AUTH_STREAM)
    return {"rate": batches * BATCH / elapsed}


def relay(ctx: Context, rep: int) -> dict[str, float]:
    from lightbus_sync.outbox import relay_for_bus

    bus, engine = ctx.scratch["bus"], ctx.scratch["engine"]
    calls = [dict(KWARGS) for _ in range(BATCH)]
    batches = _n(ctx) // BATCH
    for _ in range(batches):
        with engine.begin() as connection:
            bus.outbox(connection).bench_auth.user_created.fire_many(calls)
    relayer = relay_for_bus(bus, engine)
    started = time.perf_counter()
    moved = relayer.relay_all(timeout=300)
    elapsed = time.perf_counter() - started
    if moved != batches * BATCH or relayer.stats.relayed != moved:
        raise RuntimeError(f"relayed {moved} rows ({relayer.stats.relayed} added) of {batches * BATCH}")
    client = ctx.scratch["client"]
    client.delete(AUTH_STREAM, outbox_relayed_key(AUTH_STREAM))
    return {"rate": moved / elapsed}


def build() -> Case:
    return Case(
        name="outbox_relay",
        title="relay throughput (PostgreSQL -> Redis) vs fire_many(100)",
        description=__doc__,
        variants=[
            Variant("fire_many(100)", fire_many, baseline=True),
            Variant("relay", relay),
        ],
        metrics=[Metric("rate", "events/s", "events/s")],
        targets=[Target("relay", "rate", ">=", 0.5)],
        setup=_setup,
        teardown=_teardown,
        reps=3,
        quick_reps=2,
        parameters={"events": {"quick": 5_000, "full": 30_000}, "relay_batch_size": 1000},
    )
