"""The consumers' bus module for the inbox fault scenarios (under `lightbus-sync run`):
one listener with an inbox on $LEDGER_DB whose handler records each event's effect in
the `effects` table through the inbox's session, sleeping a little (so kills land
mid-handler) and, with $LEDGER_FAIL_RATE, failing after its write."""

import os
import random
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

import lightbus_sync
from ledger_api import LedgerApi, effects  # noqa: F401  (defines the API)

bus = lightbus_sync.create(service_name="ledger")
url = os.environ["LEDGER_DB"]
engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
fail_rate = float(os.environ.get("LEDGER_FAIL_RATE", "0"))


def book(event: lightbus_sync.EventMessage, n: int, j: int, session: Session) -> None:
    session.execute(effects.insert().values(event_id=event.id, n=n, j=j))
    time.sleep(random.random() * 0.004)
    if fail_rate and random.random() < fail_rate:
        raise RuntimeError(f"flaky failure on {n}/{j}")


bus.ledger.entry_booked.listen(book, listener_name="book", inbox=engine, since="0",
                               retry_backoff=(0.05, 0.2), max_deliveries=30)
