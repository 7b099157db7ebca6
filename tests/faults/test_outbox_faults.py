"""Fault injection for the outbox: producer and relay processes SIGKILLed at random, Redis
stopped while transactions commit. Every committed event must be in the stream once, and
no rolled-back one ever (lost = phantom = duplicates = 0). The table is printed at the end."""

from __future__ import annotations

import random
import time

import pytest

from .harness import wait_for
from .outbox_harness import account, base_env, kill_at_random, outbox_rows, prepare_database, producers, relays

pytestmark = pytest.mark.timeout(150)


def _drain(engine, relay_group, client) -> None:
    assert wait_for(lambda: outbox_rows(engine) == 0, 60), "the relays did not empty the outbox"


def _check(result) -> None:
    assert result.committed > 0 and result.rolled_back > 0, result
    assert (result.lost, result.phantom, result.stream_duplicates) == (0, 0, 0), result


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_producers_killed_at_random_points(database, server, tmp_path, request):
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = prepare_database(url)
    rng = random.Random(15)
    env = base_env(server.url, tmp_path)
    relay = relays(tmp_path, url, env).start(1)
    producer = producers(tmp_path, url, env, seed=100).start(2)
    kill_at_random(producer, 2, 8, rng)
    time.sleep(0.5)
    producer.stop()
    _drain(engine, relay, server.client())
    relay.stop()
    result = account(f"producers SIGKILLed x{producer.kills} ({database})", engine, server.client(), producer.logs())
    _check(result)
    assert producer.kills == 8


def test_two_relays_killed_at_random(server, tmp_path, postgres_url):
    engine = prepare_database(postgres_url)
    rng = random.Random(16)
    env = base_env(server.url, tmp_path)
    relay = relays(tmp_path, postgres_url, env).start(2)
    producer = producers(tmp_path, postgres_url, env, seed=200).start(2)
    producer.wait_ready(0)
    producer.wait_ready(1)
    kill_at_random(relay, 2, 8, rng)
    producer.stop()
    _drain(engine, relay, server.client())
    relay.stop()
    retaken = sum(int(line.split(" row(s) for ")[0].rsplit(" ", 1)[-1]) for log in relay.logs()
                  for line in log.splitlines() if "were relayed before" in line)
    result = account(f"2 relays, SIGKILLed x{relay.kills} ({retaken} rows re-taken after XADD)",
                     engine, server.client(), producer.logs())
    _check(result)
    assert relay.kills == 8


def test_redis_stopped_for_3s_while_transactions_commit(server, tmp_path, postgres_url):
    engine = prepare_database(postgres_url)
    env = base_env(server.url, tmp_path)
    relay = relays(tmp_path, postgres_url, env).start(2)
    producer = producers(tmp_path, postgres_url, env, seed=300).start(2)
    assert producer.wait_ready(0) and producer.wait_ready(1) and relay.wait_ready(0) and relay.wait_ready(1)
    time.sleep(1)
    server.stop()
    before = outbox_rows(engine)
    time.sleep(3)
    during = outbox_rows(engine)
    server.start()
    time.sleep(1.5)
    producer.stop()
    _drain(engine, relay, server.client())
    codes = relay.stop()
    result = account("Redis stopped 3 s, 2 relays", engine, server.client(), producer.logs())
    _check(result)
    assert during > before, "transactions kept committing while Redis was down"
    assert codes == [0, 0], codes
