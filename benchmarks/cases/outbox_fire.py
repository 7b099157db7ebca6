"""Case ``outbox_fire``: ``bus.outbox(connection).bench_auth.user_created.fire(...)`` in
its own PostgreSQL transaction, against the same transaction doing a plain INSERT of the
same row into the outbox table (pre-encoded: stream, event id, fields JSON).

Variants (single thread, sequential, each a whole ``with engine.begin()``: BEGIN,
the insert, COMMIT):
- ``transaction + plain INSERT`` (baseline): ``connection.execute(outbox_table.insert(), row)``;
- ``transaction + outbox fire``: the checks and the encoding of ``fire()``, then that
  INSERT.

Nothing touches Redis in either. The ratio shows what the outbox adds to a transaction.
"""

from __future__ import annotations

import json
import time

from ..apps.definitions import KWARGS
from ..common import AUTH_STREAM, make_bus, unique
from ..framework import Case, Context, Metric, Target, Variant
from .fire import _measure

def _setup(ctx: Context) -> None:
    from ..sql import database_engine

    ctx.scratch["engine"] = database_engine()
    ctx.scratch["bus"] = make_bus(ctx, unique("bench-outbox-fire"))


def _teardown(ctx: Context) -> None:
    from ..sql import empty_outbox

    empty_outbox(ctx.scratch.pop("engine"))
    ctx.scratch.pop("bus").close()


def _n(ctx: Context) -> int:
    return ctx.size(500, 3000)


def plain_insert(ctx: Context, rep: int) -> dict[str, float]:
    from lightbus_sync.outbox.tables import outbox_table

    engine = ctx.scratch["engine"]
    bus = ctx.scratch["bus"]
    event_id, _, fields = bus.bench_auth.user_created.encode(**KWARGS)
    row = {"api_name": "bench_auth", "stream": AUTH_STREAM, "event_id": event_id,
           "fields": json.dumps(fields, separators=(",", ":")), "created_at": time.time()}
    insert = outbox_table.insert()

    def call() -> None:
        with engine.begin() as connection:
            connection.execute(insert, [row])

    return _measure(call, _n(ctx))


def outbox_fire(ctx: Context, rep: int) -> dict[str, float]:
    engine = ctx.scratch["engine"]
    bus = ctx.scratch["bus"]

    def call() -> None:
        with engine.begin() as connection:
            bus.outbox(connection).bench_auth.user_created.fire(**KWARGS)

    return _measure(call, _n(ctx))


def build() -> Case:
    return Case(
        name="outbox_fire",
        title="outbox fire in a PostgreSQL transaction vs the same transaction with a plain INSERT",
        description=__doc__,
        variants=[
            Variant("transaction + plain INSERT", plain_insert, baseline=True),
            Variant("transaction + outbox fire", outbox_fire),
        ],
        metrics=[
            Metric("rate", "transactions/s", "tx/s"),
            Metric("p50_us", "transaction p50", "us", higher_is_better=False),
            Metric("p99_us", "transaction p99", "us", higher_is_better=False),
            Metric("cpu_us", "client CPU per transaction", "us", higher_is_better=False),
        ],
        targets=[Target("transaction + outbox fire", "rate", ">=", 0.8)],
        setup=_setup,
        teardown=_teardown,
        parameters={"transactions": {"quick": 500, "full": 3000}},
    )
