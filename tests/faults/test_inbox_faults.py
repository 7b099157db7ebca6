"""Fault injection for the inbox: consumer processes SIGKILLed at random while they
handle (their entries reclaimed by the others), and a handler failing 30% of the time.
Events come from producers through the outbox and a relay. Every committed event must
have exactly one effect (duplicate effects = lost = phantom = 0)."""

from __future__ import annotations

import random
import time

import pytest

from .harness import wait_for
from .outbox_harness import (
    account, base_env, consumers, kill_at_random, outbox_rows, pending, prepare_database, producers, relays,
)

pytestmark = pytest.mark.timeout(180)


def _effects_done(engine, client) -> bool:
    import sqlalchemy as sa

    with engine.connect() as connection:
        missing = connection.execute(sa.text(
            "SELECT count(*) FROM ledger l WHERE NOT EXISTS "
            "(SELECT 1 FROM effects e WHERE e.n = l.n AND e.j = l.j)")).scalar_one()
    return missing == 0 and outbox_rows(engine) == 0 and pending(client) == 0


def _check(result) -> None:
    assert result.committed > 0 and result.rolled_back > 0, result
    assert (result.lost, result.phantom, result.stream_duplicates, result.duplicate_effects) == (0, 0, 0, 0), result
    assert result.handled == result.published, result


def test_consumers_with_an_inbox_killed_and_reclaimed(server, tmp_path, postgres_url):
    engine = prepare_database(postgres_url)
    rng = random.Random(17)
    env = base_env(server.url, tmp_path, LEDGER_DB=postgres_url)
    relay = relays(tmp_path, postgres_url, env).start(1)
    consumer = consumers(tmp_path, env).start(2)
    producer = producers(tmp_path, postgres_url, env, seed=400).start(2)
    assert producer.wait_ready(0) and producer.wait_ready(1)
    kill_at_random(consumer, 2, 6, rng, between=(0.3, 1.0))
    producer.stop()
    assert wait_for(lambda: _effects_done(engine, server.client()), 90), "the consumers did not catch up"
    consumer.stop()
    relay.stop()
    skipped = sum(log.count("already handled by listener") for log in consumer.logs())
    result = account(f"2 inbox consumers, SIGKILLed x{consumer.kills} ({skipped} redeliveries skipped)",
                     engine, server.client(), producer.logs(), with_consumers=True)
    _check(result)


def test_a_handler_failing_30_percent_with_an_inbox(server, tmp_path, postgres_url):
    engine = prepare_database(postgres_url)
    env = base_env(server.url, tmp_path, LEDGER_DB=postgres_url, LEDGER_FAIL_RATE="0.3")
    relay = relays(tmp_path, postgres_url, env).start(1)
    consumer = consumers(tmp_path, env).start(2)
    producer = producers(tmp_path, postgres_url, env, seed=500).start(2)
    assert producer.wait_ready(0) and producer.wait_ready(1)
    time.sleep(8)
    producer.stop()
    assert wait_for(lambda: _effects_done(engine, server.client()), 90), "the consumers did not catch up"
    codes = consumer.stop()
    relay.stop()
    failures = sum(log.count("flaky failure on") for log in consumer.logs())
    result = account(f"handler failing 30%, inbox ({failures} failed runs)", engine, server.client(),
                     producer.logs(), with_consumers=True)
    _check(result)
    assert server.client().xlen("{" + "ledger.*:stream" + "}:dead") == 0
    assert codes == [0, 0], codes
