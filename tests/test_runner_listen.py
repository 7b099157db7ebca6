"""listen() and the runner in-process, on a real Redis: what handlers receive, the
listen()-time checks, consumer groups and where they start, skipped entries, ordering,
bounded prefetch, the embedded listener thread and its hooks, option names."""

from __future__ import annotations

import dataclasses
import datetime
import random
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import attrs
import pytest

import lightbus_sync
from lightbus_sync import Api, DuplicateListener, Event, EventMessage, InvalidListener, Parameter
from lightbus_sync.runner import Runner
from runner_apps.harness import fast_config, make_bus, pending_count, wait_until  # noqa: F401 (fixture)


@dataclasses.dataclass
class Address:
    street: str
    number: int


@attrs.define
class Profile:
    nickname: str
    age: int


class ListenAuthApi(Api):
    user_created = Event(parameters=(Parameter("username", str), Parameter("email", str)))
    user_updated = Event(parameters=("username", "new_email"))
    user_deleted = Event(parameters=("username"))
    typed = Event(parameters=(
        Parameter("count", int),
        Parameter("when", datetime.datetime),
        Parameter("amount", Decimal),
        Parameter("uid", uuid.UUID),
        Parameter("tags", list[str]),
        Parameter("address", Address),
        Parameter("profile"),
        Parameter("extra"),
        Parameter("flag", bool, default=False),
    ))

    class Meta:
        name = "rl.auth"


class ListenOtherApi(Api):
    pinged = Event(parameters=(Parameter("n", int),))

    class Meta:
        name = "rl.other"


AUTH_STREAM = "rl.auth.*:stream"


class Collector:
    """Thread-safe list a handler appends to; ``wait_for(n)`` waits until it holds n."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                pytest.fail(f"expected {count} items, got {len(self.items)}: {self.items!r}", pytrace=False)
            return list(self.items)


# --- what a handler receives -----------------------------------------------------------


def test_handler_gets_parameters_as_kwargs_cast_to_declared_and_annotated_types(make_bus):
    bus = make_bus()
    got = Collector()

    def on_typed(count, when, amount, uid, tags, address, profile: Profile, extra, flag):
        got.add(dict(count=count, when=when, amount=amount, uid=uid, tags=tags, address=address,
                     profile=profile, extra=extra, flag=flag))

    bus.rl.auth.typed.listen(on_typed, listener_name="typed")
    when = datetime.datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=datetime.timezone.utc)
    uid = uuid.uuid4()
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.rl.auth.typed.fire(
            count=3, when=when, amount=Decimal("12.50"), uid=uid, tags=["a", "b"],
            address=Address("Main St", 5), profile=Profile("ada", 36), extra={"k": [1, 2]},
        )
        (kwargs,) = got.wait_for(1)
    assert kwargs == dict(count=3, when=when, amount=Decimal("12.50"), uid=uid, tags=["a", "b"],
                          address=Address("Main St", 5), profile=Profile("ada", 36),
                          extra={"k": [1, 2]}, flag=False)
    # Declared types, and the handler's own richer annotation for the untyped 'profile'.
    assert type(kwargs["when"]) is datetime.datetime and type(kwargs["amount"]) is Decimal
    assert type(kwargs["uid"]) is uuid.UUID and type(kwargs["address"]) is Address
    assert type(kwargs["profile"]) is Profile and type(kwargs["extra"]) is dict


def test_handler_asking_for_the_message_gets_id_stream_id_and_delivery_count(make_bus):
    bus = make_bus()
    by_name, by_annotation = Collector(), Collector()

    def first_param_named(event_message, username, email):
        by_name.add((event_message, username, email))

    def first_param_annotated(msg: EventMessage, **kwargs):
        by_annotation.add((msg, kwargs))

    bus.rl.auth.user_created.listen(first_param_named, listener_name="named")
    bus.rl.auth.user_created.listen(first_param_annotated, listener_name="annotated")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        fired = bus.rl.auth.user_created.fire(username="ada", email="ada@example.com")
        ((message, username, email),) = by_name.wait_for(1)
        ((message2, kwargs),) = by_annotation.wait_for(1)
    for received in (message, message2):
        assert isinstance(received, EventMessage)
        assert received.id == fired.id
        assert received.stream_id == fired.stream_id
        assert received.delivery_count == 1
        assert received.canonical_name == "rl.auth.user_created"
        assert received.kwargs == {"username": "ada", "email": "ada@example.com"}
    assert (username, email) == ("ada", "ada@example.com")
    assert kwargs == {"username": "ada", "email": "ada@example.com"}


# --- listen()-time checks ---------------------------------------------------------------


def test_seed_handlers_with_wrong_parameters_fail_at_listen_time_naming_both_sides(make_bus):
    bus = make_bus()

    def handle_updated(username, email):
        pass

    def handle_deleted(username, email):
        pass

    with pytest.raises(InvalidListener) as updated:
        bus.rl.auth.user_updated.listen(handle_updated, listener_name="updated")
    text = str(updated.value)
    assert "handle_updated" in text and "rl.auth.user_updated" in text
    assert "'new_email'" in text and "'email'" in text

    with pytest.raises(InvalidListener) as deleted:
        bus.rl.auth.user_deleted.listen(handle_deleted, listener_name="deleted")
    text = str(deleted.value)
    assert "handle_deleted" in text and "rl.auth.user_deleted" in text and "'email'" in text
    assert len(bus.listeners) == 0


def test_listener_name_is_required_and_unique(make_bus):
    bus = make_bus()

    def handle_created(username, email):
        pass

    with pytest.raises(InvalidListener, match="listener_name"):
        bus.rl.auth.user_created.listen(handle_created)
    bus.rl.auth.user_created.listen(handle_created, listener_name="store_user")
    with pytest.raises(DuplicateListener, match="store_user"):
        bus.rl.auth.user_deleted.listen(lambda username: None, listener_name="store_user")
    assert [l.name for l in bus.listeners] == ["store_user"]


def test_listen_many_gets_every_event_through_one_listener(make_bus):
    bus = make_bus()
    got = Collector()

    def on_any(event_message, **kwargs):
        got.add((event_message.canonical_name, kwargs))

    listener = bus.listen_many(
        [bus.rl.auth.user_created, bus.rl.auth.user_deleted, bus.rl.other.pinged], on_any, listener_name="audit"
    )
    assert listener.group == "svc-audit"
    assert set(listener.streams) == {AUTH_STREAM, "rl.other.*:stream"}
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.rl.auth.user_created.fire(username="a", email="a@x")
        bus.rl.auth.user_deleted.fire(username="a")
        bus.rl.other.pinged.fire(n=7)
        bus.rl.auth.user_updated.fire(username="a", new_email="b@x")  # not listened to
        items = got.wait_for(3)
        time.sleep(0.3)
    assert sorted(items, key=repr) == sorted([
        ("rl.auth.user_created", {"username": "a", "email": "a@x"}),
        ("rl.auth.user_deleted", {"username": "a"}),
        ("rl.other.pinged", {"n": 7}),
    ], key=repr)
    assert len(got.items) == 3


# --- consumer groups --------------------------------------------------------------------


def test_groups_are_service_listener_and_start_at_dollar_or_since(make_bus, redis_client):
    early = make_bus()
    e1 = early.rl.auth.user_deleted.fire(username="e1")
    time.sleep(0.01)
    between = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.01)
    early.rl.auth.user_deleted.fire(username="e2")

    bus = make_bus()
    seen: dict[str, Collector] = {name: Collector() for name in ("fresh", "all", "after_time", "after_id")}

    def recorder(name):
        return lambda username: seen[name].add(username)

    bus.rl.auth.user_deleted.listen(recorder("fresh"), listener_name="fresh")
    bus.rl.auth.user_deleted.listen(recorder("all"), listener_name="all", since="0")
    bus.rl.auth.user_deleted.listen(recorder("after_time"), listener_name="after_time", since=between)
    bus.rl.auth.user_deleted.listen(recorder("after_id"), listener_name="after_id", since=e1.stream_id)
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.rl.auth.user_deleted.fire(username="e3")
        assert seen["all"].wait_for(3) == ["e1", "e2", "e3"]
        assert seen["after_time"].wait_for(2) == ["e2", "e3"]
        assert seen["after_id"].wait_for(2) == ["e2", "e3"]
        assert seen["fresh"].wait_for(1) == ["e3"]
        time.sleep(0.3)
    assert {name: c.items for name, c in seen.items()} == {
        "fresh": ["e3"], "all": ["e1", "e2", "e3"], "after_time": ["e2", "e3"], "after_id": ["e2", "e3"]}
    groups = {g["name"].decode(): g for g in redis_client.xinfo_groups(AUTH_STREAM)}
    assert set(groups) == {"svc-fresh", "svc-all", "svc-after_time", "svc-after_id"}
    assert all(g["pending"] == 0 for g in groups.values())

    # The group exists now (BUSYGROUP): since='0' on a restart does not replay the stream.
    again = make_bus(process_name="p2")
    replay = Collector()
    again.rl.auth.user_deleted.listen(lambda username: replay.add(username), listener_name="all", since="0")
    with again.listening() as runner:
        assert runner.wait_until_ready(10)
        again.rl.auth.user_deleted.fire(username="e4")
        assert replay.wait_for(1) == ["e4"]
        time.sleep(0.3)
    assert replay.items == ["e4"]


def test_two_listener_names_each_receive_every_event_once(make_bus, redis_client):
    bus = make_bus()
    first, second = Collector(), Collector()
    bus.rl.other.pinged.listen(lambda n: first.add(n), listener_name="first")
    bus.rl.other.pinged.listen(lambda n: second.add(n), listener_name="second")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.rl.other.pinged.fire_many([{"n": i} for i in range(50)])
        first.wait_for(50)
        second.wait_for(50)
        time.sleep(0.3)
    assert sorted(first.items) == list(range(50)) and sorted(second.items) == list(range(50))
    for group in ("svc-first", "svc-second"):
        assert pending_count(redis_client, "rl.other.*:stream", group) == 0


def test_other_events_and_noop_entries_are_acked_and_skipped(make_bus, redis_client):
    bus = make_bus()
    got = Collector()
    bus.rl.auth.user_created.listen(lambda username, email: got.add(username), listener_name="created")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        redis_client.xadd(AUTH_STREAM, {"": ""})  # Lightbus's stream-creating noop entry
        bus.rl.auth.user_deleted.fire(username="x")
        bus.rl.auth.user_updated.fire(username="x", new_email="y")
        redis_client.xadd(AUTH_STREAM, {"": ""})
        bus.rl.auth.user_created.fire(username="wanted", email="w@x")
        assert got.wait_for(1) == ["wanted"]
        wait_until(lambda: pending_count(redis_client, AUTH_STREAM, "svc-created") == 0, 5, what="all acked")
        wait_until(lambda: runner.stats.get("acked") == 5, 5, what="5 acks")
    assert got.items == ["wanted"]
    assert runner.stats.get("skipped") == 2
    assert runner.stats.get("dead_lettered") == 0
    assert redis_client.xinfo_groups(AUTH_STREAM)[0]["last-delivered-id"] == redis_client.xinfo_stream(AUTH_STREAM)["last-generated-id"]


# --- ordering and flow control ------------------------------------------------------------


def test_concurrency_one_handles_events_strictly_in_stream_order(make_bus, redis_client):
    bus = make_bus()
    order = Collector()

    def record(n):
        time.sleep(random.random() / 1000)
        order.add(n)

    bus.rl.other.pinged.listen(record, listener_name="ordered", concurrency=1)
    with bus.listening(threads=8) as runner:
        assert runner.wait_until_ready(10)
        bus.rl.other.pinged.fire_many([{"n": i} for i in range(100)])
        for i in range(100, 200):
            bus.rl.other.pinged.fire(n=i)
        order.wait_for(200, timeout=20)
    assert order.items == list(range(200))


def test_prefetch_bounds_what_is_read_ahead_of_the_workers(make_bus, redis_client):
    bus = make_bus(config=fast_config(runner={"threads": 2, "prefetch": 3}))
    release = threading.Event()
    started = Collector()

    def slow(n):
        started.add(n)
        release.wait(20)

    bus.rl.other.pinged.listen(slow, listener_name="slow")
    runner = bus.start_listener_thread()
    try:
        assert runner.threads == 2 and runner.prefetch == 3
        assert runner.wait_until_ready(10)
        fired = bus.rl.other.pinged.fire_many([{"n": i} for i in range(40)])
        started.wait_for(2)
        # Two handlers busy, three entries read ahead: five delivered, the rest unread.
        wait_until(lambda: pending_count(redis_client, "rl.other.*:stream", "svc-slow") == 5, 5, what="5 pending")
        time.sleep(1.5)  # longer than the acknowledgement timeout: nothing more is read or claimed
        assert pending_count(redis_client, "rl.other.*:stream", "svc-slow") == 5
        assert len(started.items) == 2
        last_read = redis_client.xinfo_groups("rl.other.*:stream")[0]["last-delivered-id"]
        assert last_read.decode() == fired[4].stream_id
        release.set()
        started.wait_for(40)
        wait_until(lambda: pending_count(redis_client, "rl.other.*:stream", "svc-slow") == 0, 5, what="all acked")
    finally:
        release.set()
        assert runner.stop(10)
    assert sorted(started.items) == list(range(40))


def test_a_backlog_longer_than_the_ack_timeout_is_handled_once_each(make_bus, redis_client):
    """Entries fetched ahead of the workers keep their leases: a backlog that takes
    longer than the acknowledgement timeout is not claimed (and run) a second time."""
    bus = make_bus(config=fast_config(runner={"threads": 2}))
    calls = Collector()

    def slow(event_message, n):
        calls.add((n, event_message.delivery_count))
        time.sleep(0.2)

    bus.rl.other.pinged.listen(slow, listener_name="backlog")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        bus.rl.other.pinged.fire_many([{"n": i} for i in range(24)])  # 2.4 s of work for two threads
        calls.wait_for(24)
        wait_until(lambda: pending_count(redis_client, "rl.other.*:stream", "svc-backlog") == 0, 5, what="acked")
        time.sleep(1.2)
    assert sorted(calls.items) == [(i, 1) for i in range(24)]
    assert runner.stats.get("reclaimed") == 0


# --- embedded listener thread, hooks -----------------------------------------------------


def test_start_listener_thread_handle_and_listening_context(make_bus):
    bus = make_bus()
    got = Collector()
    events: list[str] = []
    bus.on_start(lambda: events.append("start"))
    bus.on_stop(lambda: events.append("stop"))
    bus.rl.other.pinged.listen(lambda n: got.add(n), listener_name="embedded")

    handle = bus.start_listener_thread(threads=2)
    assert events == ["start"]
    assert handle.is_alive()
    assert handle.wait_until_ready(10)
    bus.rl.other.pinged.fire(n=1)
    got.wait_for(1)
    assert handle.stop(timeout=5) is True
    assert not handle.is_alive()
    assert events == ["start", "stop"]
    assert handle.stop(timeout=5) is True  # idempotent

    with bus.listening() as runner:
        assert runner.is_alive() and runner.wait_until_ready(10)
        bus.rl.other.pinged.fire(n=2)
        got.wait_for(2)
    assert not runner.is_alive()
    assert got.items == [1, 2]
    assert events == ["start", "stop", "start", "stop"]


def test_consumer_name_is_the_process_name_and_stays_after_stop(make_bus, redis_client):
    """Stopping deletes this process's consumer only when another consumer remains in the
    group (Lightbus 1.x deletes groups left with no consumers)."""
    first = make_bus(process_name="worker-a")
    first.rl.other.pinged.listen(lambda n: None, listener_name="names")
    with first.listening() as runner:
        assert runner.consumer_name == "worker-a"
        assert runner.wait_until_ready(10)
        wait_until(lambda: redis_client.xinfo_consumers("rl.other.*:stream", "svc-names"), 5, what="consumer")
    second = make_bus(process_name="worker-b")
    second.rl.other.pinged.listen(lambda n: None, listener_name="names")
    with second.listening() as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: len(redis_client.xinfo_consumers("rl.other.*:stream", "svc-names")) == 2, 5,
                   what="two consumers")
    names = [c["name"] for c in redis_client.xinfo_consumers("rl.other.*:stream", "svc-names")]
    assert names == [b"worker-a"]


# --- option names ---------------------------------------------------------------------------


def test_option_names_reach_the_runner(make_bus, redis_client):
    config = {
        "apis": {"default": {"event_transport": {"redis": {
            "batch_size": 7, "acknowledgement_timeout": 2.5, "reclaim_interval": 0.3, "max_stream_length": 50,
            "stream_use": "per_event", "consumer_ttl": 120, "block_ms": 100,
        }}}},
        "bus": {"runner": {"threads": 3, "prefetch": 4, "shutdown_timeout": 6}},
    }
    bus = make_bus(config=config)
    got = Collector()
    bus.rl.other.pinged.listen(lambda n: got.add(n), listener_name="opts")
    runner = Runner(bus)
    assert (runner.threads, runner.prefetch, runner.shutdown_timeout) == (3, 4, 6)
    (listener,) = runner.listeners
    settings = runner.routes[0].settings
    assert (settings.batch_size, settings.acknowledgement_timeout, settings.effective_reclaim_interval,
            settings.max_stream_length, settings.consumer_ttl) == (7, 2.5, 0.3, 50, 120)
    assert listener.streams == ("rl.other.pinged:stream",)  # stream_use: per_event
    overridden = Runner(bus, threads=5, prefetch=1, shutdown_timeout=0.5)
    assert (overridden.threads, overridden.prefetch, overridden.shutdown_timeout) == (5, 1, 0.5)
    with runner:
        assert runner.wait_until_ready(10)
        bus.rl.other.pinged.fire(n=1)
        assert got.wait_for(1) == [1]
    assert redis_client.exists("rl.other.pinged:stream") and not redis_client.exists("rl.other.*:stream")

    with pytest.raises(lightbus_sync.ConfigurationError, match="event_transport.redis"):
        make_bus(config={"apis": {"default": {"event_transport": {"redis": {"batch_size": 0}}}}})
    with pytest.raises(lightbus_sync.ConfigurationError, match="runner"):
        make_bus(config={"bus": {"runner": {"threads": 0}}})
    with pytest.raises(lightbus_sync.ConfigurationError, match="prefech"):
        make_bus(config={"bus": {"runner": {"prefech": 2}}})
