"""A producer process: a loop of transactions, each booking 1-3 ledger rows and firing one
event per row through the outbox; about 30% roll back. Prints ``begin N`` before each.

    python outbox_producer.py DB_URL INSTANCE SEED
"""

import random
import sys
import time

import sqlalchemy as sa

import lightbus_sync
from ledger_api import LedgerApi, ledger  # noqa: F401

url, instance, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
# Redis is never contacted: a port nothing listens on.
bus = lightbus_sync.create(redis_url="redis://127.0.0.1:9/0", service_name="ledger-producer")


def pause() -> None:
    if rng.random() < 0.3:
        time.sleep(rng.random() * 0.003)


for i in range(10_000_000):
    n = instance * 1_000_000 + i
    print(f"begin {n}", flush=True)
    with engine.connect() as connection:
        connection.begin()
        count = rng.choice((1, 1, 2, 3))
        for j in range(count):
            connection.execute(ledger.insert().values(n=n, j=j))
            pause()
            bus.outbox(connection).ledger.entry_booked.fire(n=n, j=j)
            pause()
        if rng.random() < 0.3:
            connection.rollback()
        else:
            connection.commit()
    time.sleep(0.002)
