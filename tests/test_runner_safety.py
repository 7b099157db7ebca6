"""The runner on a real Redis: it reports entries lost to its groups (log, observer,
stop statistics) and trims its streams to what every group acked; every failure before
a handler counts; dead-lettering refused by Redis leaves the entry as it was and says
so; access is checked at start; a vanished group comes back where the runner was."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time

import pytest

from prometheus_client import CollectorRegistry

import lightbus_sync
import lightbus_sync.metrics
from lightbus_sync import AccessRefused, Api, Event, Parameter
from lightbus_sync.observers import Observer
from runner_apps.harness import Calls, fast_config, make_bus, pending_count, run_cli, wait_until  # noqa: F401 (fixture)

STREAM = "rs.jobs.*:stream"
DEAD = "{rs.jobs.*:stream}:dead"


@dataclasses.dataclass
class Exits:
    code: int

    def __post_init__(self) -> None:
        if self.code == 99:
            raise SystemExit(99)  # escapes every cast's error handling


@dataclasses.dataclass
class Picky:
    name: str

    def __post_init__(self) -> None:
        if self.name == "boom":
            raise KeyError("boom")  # not an InvalidIncomingEvent


class SafetyJobsApi(Api):
    job = Event(parameters=(Parameter("n", int),))
    exits = Event(parameters=(Parameter("value", Exits),))
    picky = Event(parameters=(Parameter("value", Picky),))

    class Meta:
        name = "rs.jobs"


class Lost(Observer):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def on_lost(self, listener: str, stream: str, count: int) -> None:
        self.calls.append((listener, stream, count))


def raw(client, event: str, value: str) -> None:
    """An entry as another producer would write it (the value is valid JSON)."""
    client.xadd(STREAM, {"id": f"raw-{event}", "api_name": "rs.jobs", "event_name": event, "version": "1",
                         ":value": value})


def dead(client) -> list[dict]:
    return [fields for _, fields in client.xrange(DEAD)]


@pytest.fixture(params=["redis7_server", "redis82_server"])
def exact_server(request):
    """Redis 7+: it counts losses exactly (6.2 cannot tell for a group that read nothing)."""
    server = request.getfixturevalue(request.param)
    server.flushall()
    return server


def test_a_hard_cap_loss_while_stopped_is_reported_at_start(make_bus, exact_server, caplog):
    redis_client = exact_server.client()
    make_bus = functools.partial(make_bus, exact_server.url)
    bus = make_bus(config=fast_config({"max_stream_length": 50}))
    seen = Calls()
    bus.rs.jobs.job.listen(lambda n: seen.add(n), listener_name="work", since="0")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
    producer = make_bus(service_name="producer", config=fast_config({"max_stream_length": 50}))
    producer.register(SafetyJobsApi)
    for start in range(0, 500, 100):
        producer.rs.jobs.job.fire_many([{"n": n} for n in range(start, start + 100)])
    length = redis_client.xlen(STREAM)
    assert length < 500
    lost = Lost()
    bus2 = make_bus(config=fast_config({"max_stream_length": 50}))
    bus2.rs.jobs.job.listen(lambda n: seen.add(n), listener_name="work", since="0")
    with caplog.at_level(logging.INFO, logger="lightbus_sync.runner"):
        runner = lightbus_sync.Runner(bus2)
        runner.add_observer(lost)
        registry = CollectorRegistry()
        lightbus_sync.metrics.instrument(bus2, runner, registry=registry)
        with runner:
            assert runner.wait_until_ready(10)
            wait_until(lambda: len(seen) >= length, 10, what="the entries left handled")
    expected = 500 - length
    assert lost.calls == [("work", STREAM, expected)]
    assert runner.stats.get("lost") == expected
    assert registry.get_sample_value("lightbus_sync_events_lost_total",
                                     {"listener": "work", "stream": STREAM}) == expected
    assert any(f"consumer group 'svc-work' lost {expected} entries" in r.getMessage() for r in caplog.records)
    stopped = [r.getMessage() for r in caplog.records if "runner stopped" in r.getMessage()]
    assert f"'lost': {expected}" in stopped[-1]  # the stop statistics
    redis_client.close()


def test_the_runner_trims_its_stream_to_what_every_group_acked(make_bus, redis_server, redis_client):
    redis_client.config_set("stream-node-max-entries", 10)  # approximate trims: 10-entry nodes
    try:
        bus = make_bus(config=fast_config({"trim_interval": 0.2}))
        seen = Calls()
        bus.rs.jobs.job.listen(lambda n: seen.add(n), listener_name="work")
        redis_client.xgroup_create(STREAM, "slow-service", id="$", mkstream=True)
        redis_client.xgroup_createconsumer(STREAM, "slow-service", "c1")
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            bus.rs.jobs.job.fire_many([{"n": n} for n in range(200)])
            wait_until(lambda: len(seen) == 200, 10, what="200 handled")
            time.sleep(0.6)
            assert redis_client.xlen(STREAM) >= 200  # slow-service has read nothing: nothing goes
            reply = redis_client.xreadgroup("slow-service", "c1", {STREAM: ">"}, count=150)
            redis_client.xack(STREAM, "slow-service", *[i for i, _ in reply[0][1]])
            wait_until(lambda: redis_client.xlen(STREAM) <= 60, 10, what="trimmed to slow-service's position")
        assert redis_client.xlen(STREAM) >= 50  # its unread entries stay
    finally:
        redis_client.config_set("stream-node-max-entries", 100)


def test_an_exception_in_a_cast_dead_letters_the_entry_naming_it(make_bus, redis_client):
    bus = make_bus()
    seen = Calls()
    bus.rs.jobs.picky.listen(lambda value: seen.add(value.name), listener_name="picky")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.rs.jobs.picky.fire(value=Picky("fine"))
        raw(redis_client, "picky", '{"name": "boom"}')  # Picky("boom") cannot even be built here
        wait_until(lambda: len(dead(redis_client)) == 1 and len(seen) == 1, 10, what="one dead letter")
    [letter] = dead(redis_client)
    assert letter[b"dl:reason"] == b"invalid", letter
    assert b"KeyError" in letter[b"dl:error"], letter


def test_an_entry_failing_before_its_handler_is_dead_lettered_after_max_deliveries(make_bus, redis_client, caplog):
    bus = make_bus()
    seen = Calls()
    bus.rs.jobs.exits.listen(lambda value: seen.add(value.code), listener_name="exits", max_deliveries=2)
    with caplog.at_level(logging.ERROR, logger="lightbus_sync.runner"):
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            raw(redis_client, "exits", '{"code": 99}')
            bus.rs.jobs.exits.fire(value=Exits(1))
            wait_until(lambda: len(dead(redis_client)) == 1, 15, what="the dead letter")
            wait_until(lambda: pending_count(redis_client, STREAM, "svc-exits") == 0, 5, what="nothing pending")
            assert runner.is_alive()
    [letter] = dead(redis_client)
    assert letter[b"dl:reason"] == b"failed before its handler 2 times"
    assert letter[b"dl:error_type"] == b"SystemExit"
    assert seen.items == [1]
    assert any("stays pending and will be retried" in r.getMessage() and "1 of 2" in r.getMessage()
               for r in caplog.records)


def _user(server, name: str, *rules: str) -> str:
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">secret", "~*", "&*", *rules)
    return f"redis://{name}:secret@127.0.0.1:{server.port}/0"


def _drop_users(server) -> None:
    with server.client() as admin:
        for user in admin.acl_users():
            if (user.decode() if isinstance(user, bytes) else user) != "default":
                admin.acl_deluser(user)


def test_a_wrong_password_is_refused_at_start(make_bus, redis_server):
    url = f"redis://nobody:wrong@127.0.0.1:{redis_server.port}/0"
    bus = make_bus(url)
    bus.rs.jobs.job.listen(lambda n: None, listener_name="work")
    started = time.monotonic()
    with pytest.raises(AccessRefused, match="retrying will not help"):
        lightbus_sync.Runner(bus).start()
    assert time.monotonic() - started < 10


def test_a_user_missing_hdel_is_refused_at_start_on_redis_7(make_bus, redis7_server):
    redis7_server.flushall()
    try:
        bus = make_bus(_user(redis7_server, "runner", "+@all", "-hdel"))
        bus.rs.jobs.job.listen(lambda n: None, listener_name="work")
        with pytest.raises(AccessRefused) as caught:
            lightbus_sync.Runner(bus).start()
        assert caught.value.missing == ("HDEL on {rs.jobs.*:stream}:attempts",)
        assert "may not run HDEL on {rs.jobs.*:stream}:attempts" in str(caught.value)
    finally:
        _drop_users(redis7_server)


def test_a_refused_dead_letter_leaves_the_entry_pending_and_says_so_on_redis_6_2(make_bus, redis62_server, caplog):
    """Redis 6.2 cannot be asked which commands a user may run: the runner starts, and
    the dead-letter script, refused, changes nothing and the log says so."""
    redis62_server.flushall()
    client = redis62_server.client()
    try:
        bus = make_bus(_user(redis62_server, "runner", "+@all", "-hdel"))
        bus.rs.jobs.job.listen(lambda n: None, listener_name="work")
        with caplog.at_level(logging.ERROR, logger="lightbus_sync.runner"):
            with bus.listening() as runner:
                assert runner.wait_until_ready(10)
                client.xadd(STREAM, {"id": "x", "api_name": "rs.jobs", "event_name": "job", "version": "1",
                                     ":n": "[1,"})
                wait_until(lambda: any("could not dead-letter" in r.getMessage() for r in caplog.records), 10,
                           what="the refusal logged")
                assert runner.is_alive()
        message = next(r.getMessage() for r in caplog.records if "could not dead-letter" in r.getMessage())
        assert "HDEL refused" in message and "stays pending" in message
        assert client.xlen(DEAD) == 0
        assert pending_count(client, STREAM, "svc-work") == 1
        assert not any("dead-lettered entry" in r.getMessage() for r in caplog.records)
    finally:
        client.close()
        _drop_users(redis62_server)


def test_a_destroyed_group_is_recreated_where_the_runner_was(make_bus, redis_client, caplog):
    bus = make_bus()
    seen = Calls()
    bus.rs.jobs.job.listen(lambda n: seen.add(n), listener_name="work", since="0")
    with caplog.at_level(logging.WARNING, logger="lightbus_sync.runner"):
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            bus.rs.jobs.job.fire_many([{"n": n} for n in range(50)])
            wait_until(lambda: len(seen) == 50, 10, what="50 handled")
            wait_until(lambda: pending_count(redis_client, STREAM, "svc-work") == 0, 5, what="acked")
            last = redis_client.xinfo_groups(STREAM)[0]["last-delivered-id"]
            redis_client.xgroup_destroy(STREAM, "svc-work")
            wait_until(lambda: runner.stats.get("groups_recreated") >= 1, 10, what="the group recreated")
            bus.rs.jobs.job.fire_many([{"n": n} for n in range(50, 60)])
            wait_until(lambda: len(seen) >= 60, 10, what="the new ones handled")
            time.sleep(0.3)
    assert sorted(seen.items) == list(range(60))  # nothing handled twice, nothing missed
    assert any(f"recreated at {last.decode()}" in r.getMessage() for r in caplog.records)


def test_a_password_refused_while_running_stops_the_runner_as_an_access_failure(make_bus, redis7_server):
    redis7_server.flushall()
    try:
        bus = make_bus(_user(redis7_server, "runner", "+@all"))
        bus.rs.jobs.job.listen(lambda n: None, listener_name="work")
        runner = lightbus_sync.Runner(bus)
        runner.start()
        assert runner.wait_until_ready(10)
        with redis7_server.client() as admin:
            admin.execute_command("ACL", "SETUSER", "runner", "resetpass", ">rotated")
            admin.execute_command("CLIENT", "KILL", "USER", "runner")  # the reader must reconnect
        assert runner.wait(20), "the runner did not stop"
        assert runner.failure_is_access is True
        assert "refused the connection" in runner.failure and "secret" not in runner.failure
    finally:
        _drop_users(redis7_server)


def test_lightbus_sync_run_with_a_wrong_password_exits_2_at_once(tmp_path, redis_server):
    url = f"redis://nobody:wrong-secret@127.0.0.1:{redis_server.port}/0"
    started = time.monotonic()
    result = run_cli(tmp_path, "run", "--bus", "recording_bus", "--redis-url", url,
                     env={"TEST_REDIS_URL": redis_server.url})  # where the bus module records its hooks
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 20
    assert "refused the connection" in result.stderr and "retrying will not help" in result.stderr
    assert "wrong-secret" not in result.stderr + result.stdout
