"""Case ``inbox``: handler throughput with ``listen(..., inbox=engine)`` against the
same handler without the inbox, PostgreSQL, one runner with 8 threads in this process.

N entries are written to the stream first (not timed); the time runs from the runner's
start until the last handler call returns. The handler inserts one row:
- ``handler, own transaction`` (baseline): ``with engine.begin(): insert``;
- ``handler with inbox``: ``session.execute(insert)`` in the inbox's transaction, which
  also inserts (and checks) the inbox row.
"""

from __future__ import annotations

import threading
import time

from ..apps.definitions import KWARGS
from ..common import AUTH_STREAM, bare_client, make_bus, stop_runner, unique
from ..framework import Case, Context, Metric, Variant


def _n(ctx: Context) -> int:
    return ctx.size(1_000, 5_000)


def _table():
    import sqlalchemy as sa

    metadata = sa.MetaData()
    return metadata, sa.Table("bench_inbox_effects", metadata, sa.Column("username", sa.String(64)))


def _run(ctx: Context, with_inbox: bool) -> dict[str, float]:
    from sqlalchemy.orm import Session

    from ..sql import database_engine, empty_outbox

    engine = database_engine()
    metadata, effects = _table()
    metadata.create_all(engine)
    insert = effects.insert()
    n = _n(ctx)
    bus = make_bus(ctx, unique("bench-inbox"))
    client = bare_client(ctx)
    client.delete(AUTH_STREAM)
    bus.bench_auth.user_created.fire_many([dict(KWARGS) for _ in range(n)])
    done = threading.Event()
    count = [0]
    lock = threading.Lock()

    def finished() -> None:
        with lock:
            count[0] += 1
            if count[0] == n:
                done.set()

    if with_inbox:
        def handler(username, email, is_admin, session: Session):
            session.execute(insert, {"username": username})
            finished()

        bus.bench_auth.user_created.listen(handler, listener_name="inbox", since="0", inbox=engine)
    else:
        def handler(username, email, is_admin):
            with engine.begin() as connection:
                connection.execute(insert, {"username": username})
            finished()

        bus.bench_auth.user_created.listen(handler, listener_name="plain", since="0")
    started = time.perf_counter()
    runner = bus.start_listener_thread()
    try:
        if not done.wait(300):
            raise TimeoutError(f"handled {count[0]} of {n}")
        elapsed = time.perf_counter() - started
    finally:
        stop_runner(runner, client, AUTH_STREAM)
        client.delete(AUTH_STREAM)
        client.close()
        bus.close()
        empty_outbox(engine)
    return {"rate": n / elapsed}


def build() -> Case:
    return Case(
        name="inbox",
        title="handler throughput with an inbox vs the same handler without (PostgreSQL)",
        description=__doc__,
        variants=[
            Variant("handler, own transaction", lambda ctx, rep: _run(ctx, False), baseline=True),
            Variant("handler with inbox", lambda ctx, rep: _run(ctx, True)),
        ],
        metrics=[Metric("rate", "events handled/s", "events/s")],
        reps=3,
        quick_reps=2,
        parameters={"events": {"quick": 1_000, "full": 5_000}, "threads": 8},
    )
