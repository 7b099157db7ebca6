"""Handlers that fail and entries that cannot be handled, on a real Redis: retries with
backoff (the schedule kept in Redis as idle time), dead-lettering, the on_error
policies, malformed entries. The runner never dies from any of it."""

from __future__ import annotations

import logging
import time


from lightbus_sync import Api, DeadLetter, Event, Parameter
from lightbus_sync.runner import dead_letter_stream
from runner_apps.harness import Calls, make_bus, pending_count, wait_until  # noqa: F401 (fixture)


class FailuresApi(Api):
    job = Event(parameters=(Parameter("n", int), Parameter("label", str, default="")))
    other = Event(parameters=(Parameter("n", int),))

    class Meta:
        name = "rf.jobs"


STREAM = "rf.jobs.*:stream"
DEAD = "{rf.jobs.*:stream}:dead"


def dead_entries(client) -> list[dict[str, bytes]]:
    return [{k.decode(errors="replace"): v for k, v in fields.items()} for _, fields in client.xrange(DEAD)]


def test_dead_letter_stream_is_beside_its_stream_in_the_same_cluster_slot():
    assert dead_letter_stream(STREAM) == DEAD


def test_failing_handler_is_logged_with_traceback_retried_with_backoff_then_acked(make_bus, redis_client, caplog):
    bus = make_bus()
    attempts = Calls()
    others = Calls()

    def flaky(event_message, n, label):
        attempts.add((event_message.delivery_count, time.monotonic()))
        if event_message.delivery_count < 3:
            raise ValueError(f"flaky failure #{event_message.delivery_count}")

    bus.rf.jobs.job.listen(flaky, listener_name="flaky", retry_backoff=(0.4, 0.8))
    bus.rf.jobs.other.listen(lambda n: others.add(n), listener_name="steady")
    with caplog.at_level(logging.WARNING, logger="lightbus_sync"):
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            bus.rf.jobs.job.fire(n=1)
            for n in range(20):
                bus.rf.jobs.other.fire(n=n)
                time.sleep(0.02)
            wait_until(lambda: len(attempts) >= 3, 10, what="third delivery")
            wait_until(lambda: pending_count(redis_client, STREAM, "svc-flaky") == 0, 5, what="acked")
            time.sleep(0.5)
            assert runner.is_alive()
    assert [count for count, _ in attempts.items] == [1, 2, 3]
    # Each retry waits at least the backoff's lower half (0.4 * 2**(n-1) * 0.5).
    gaps = [b - a for (_, a), (_, b) in zip(attempts.items, attempts.items[1:])]
    assert gaps[0] >= 0.2 * 0.9 and gaps[1] >= 0.4 * 0.9, gaps
    assert sorted(others.items) == list(range(20))  # the runner kept going meanwhile
    failures = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ValueError]
    assert len(failures) == 2
    assert "Traceback" in caplog.text and "flaky failure #1" in caplog.text
    assert runner.stats.get("retried") == 2 and runner.stats.get("processed") == 21
    assert redis_client.xlen(DEAD) == 0


def test_handler_failing_every_time_is_dead_lettered_after_max_deliveries(make_bus, redis_client):
    bus = make_bus()
    attempts = Calls()

    def always_fails(event_message, n, label):
        attempts.add(event_message.delivery_count)
        raise RuntimeError("still broken")

    bus.rf.jobs.job.listen(always_fails, listener_name="broken", max_deliveries=2, retry_backoff=(0.1, 0.1))
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        fired = bus.rf.jobs.job.fire(n=5, label="five")
        wait_until(lambda: redis_client.xlen(DEAD) == 1, 10, what="dead letter")
        wait_until(lambda: pending_count(redis_client, STREAM, "svc-broken") == 0, 5, what="acked")
        time.sleep(1.5)  # past the acknowledgement timeout: no further delivery
    assert attempts.items == [1, 2]
    (dead,) = dead_entries(redis_client)
    assert dead["dl:original_id"].decode() == fired.stream_id
    assert dead["dl:reason"] == b"max deliveries reached"
    assert dead["dl:error_type"] == b"RuntimeError" and dead["dl:error"] == b"still broken"
    assert dead["dl:delivery_count"] == b"2" and dead["dl:group"] == b"svc-broken"
    assert dead["dl:event_id"].decode() == fired.id
    # The original entry travels whole, so it can be replayed.
    assert dead["id"].decode() == fired.id and dead[":n"] == b"5" and dead[":label"] == b'"five"'


def test_handler_raising_systemexit_or_an_unprintable_error_does_not_stall_the_entry(make_bus, redis_client):
    bus = make_bus()
    exits = Calls()
    nasty = Calls()

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("cannot print me")

    def exits_first(event_message, n, label):
        exits.add(event_message.delivery_count)
        if event_message.delivery_count == 1:
            raise SystemExit(3)

    def unprintable(n):
        nasty.add(n)
        raise Unprintable()

    bus.rf.jobs.job.listen(exits_first, listener_name="exits", retry_backoff=(0.1, 0.1))
    bus.rf.jobs.other.listen(unprintable, listener_name="nasty", max_deliveries=1)
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.rf.jobs.job.fire(n=1)
        bus.rf.jobs.other.fire(n=2)
        wait_until(lambda: exits.items == [1, 2], 10, what="retry after SystemExit")
        wait_until(lambda: redis_client.xlen(DEAD) == 1, 10, what="unprintable error dead-lettered")
        wait_until(lambda: pending_count(redis_client, STREAM, "svc-exits") == 0, 5, what="acked")
        assert pending_count(redis_client, STREAM, "svc-nasty") == 0
        assert runner.is_alive() and len(runner.in_flight) == 0
    assert nasty.items == [2]
    (dead,) = dead_entries(redis_client)
    assert dead["dl:error_type"] == b"Unprintable"


def test_on_error_policies_dead_letter_exception_ack_and_log_and_stop(make_bus, redis_client):
    bus = make_bus()
    calls = Calls()

    def permanent(n, label):
        calls.add(("permanent", n))
        raise DeadLetter("cannot ever work")

    def logged(n):
        calls.add(("logged", n))
        raise KeyError("ignored")

    bus.rf.jobs.job.listen(permanent, listener_name="permanent")
    bus.rf.jobs.other.listen(logged, listener_name="logged", on_error="ack_and_log")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.rf.jobs.job.fire(n=1)
        bus.rf.jobs.other.fire(n=2)
        wait_until(lambda: redis_client.xlen(DEAD) == 1, 10, what="dead letter")
        wait_until(lambda: pending_count(redis_client, STREAM, "svc-logged") == 0, 5, what="acked")
        assert pending_count(redis_client, STREAM, "svc-permanent") == 0
        time.sleep(1.5)
    assert sorted(calls.items) == [("logged", 2), ("permanent", 1)]
    assert dead_entries(redis_client)[0]["dl:reason"] == b"handler marked permanent"

    stopper = make_bus(process_name="p2")
    stopper.rf.jobs.job.listen(lambda n, label: 1 / 0, listener_name="stops", on_error="stop")
    runner = stopper.start_listener_thread()
    assert runner.wait_until_ready(10)
    stopper.rf.jobs.job.fire(n=3)
    assert runner.wait(10), "on_error='stop' stops the runner"
    assert "ZeroDivisionError" in runner.failure and not runner.is_alive()
    assert pending_count(redis_client, STREAM, "svc-stops") == 1  # left for a later run


def _event_fields(**overrides):
    fields = {"id": "4f4d5a4e-0000-11ee-8000-000000000001", "api_name": "rf.jobs", "event_name": "job",
              "version": "1", ":n": "1"}
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


MALFORMED = {
    "bad JSON": _event_fields(**{":n": "{not json"}),
    "missing id": _event_fields(id=None),
    "empty event_name": _event_fields(event_name=""),
    "uncastable value": _event_fields(**{":n": '"abc"'}),
    "unknown parameter": _event_fields(**{":bogus": "1"}),
    "missing parameter": _event_fields(**{":n": None, ":label": '"x"'}),
    "non-UTF-8 value": _event_fields(**{":label": b'"\xff\xfe"'}),
    "non-UTF-8 field name": {**_event_fields(), b":\xff": b"1"},
    "version not an integer": _event_fields(version="one"),
    "unknown metadata field": _event_fields(trace_id="abc"),
}


def test_malformed_entries_never_reach_the_handler_and_are_dead_lettered(make_bus, redis_client, caplog):
    bus = make_bus()
    handled = Calls()
    bus.rf.jobs.job.listen(lambda n, label: handled.add(n), listener_name="strict")
    bad_ids: dict[str, str] = {}
    with caplog.at_level(logging.ERROR, logger="lightbus_sync"):
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            good = 100
            for what, fields in MALFORMED.items():
                bus.rf.jobs.job.fire(n=good)
                good += 1
                bad_ids[what] = redis_client.xadd(STREAM, fields).decode()
            bus.rf.jobs.job.fire(n=good)
            wait_until(lambda: len(handled) == len(MALFORMED) + 1, 10, what="good entries handled")
            wait_until(lambda: redis_client.xlen(DEAD) == len(MALFORMED), 10, what="dead letters")
            wait_until(lambda: pending_count(redis_client, STREAM, "svc-strict") == 0, 5, what="all acked")
            assert runner.is_alive()
    assert sorted(handled.items) == list(range(100, 100 + len(MALFORMED) + 1))
    dead = {entry["dl:original_id"].decode(): entry for entry in dead_entries(redis_client)}
    assert set(dead) == set(bad_ids.values())
    for what, entry_id in bad_ids.items():
        reason = dead[entry_id]["dl:reason"].decode()
        assert reason in ("malformed", "invalid"), (what, reason)
        assert dead[entry_id]["dl:error"], what
        logged = [r.getMessage() for r in caplog.records if entry_id in r.getMessage()]
        assert logged and reason in logged[0], (what, logged)
    assert dead[bad_ids["uncastable value"]]["dl:reason"] == b"invalid"
    assert dead[bad_ids["bad JSON"]]["dl:reason"] == b"malformed"
    assert dead[bad_ids["uncastable value"]]["dl:error_type"] == b"InvalidIncomingEvent"
    # The bytes are kept as they were (non-UTF-8 included).
    assert dead[bad_ids["non-UTF-8 value"]][":label"] == b'"\xff\xfe"'
    assert runner.stats.get("dead_lettered") == len(MALFORMED)
