"""lightbus_sync on a real Redis Cluster (3 masters + 3 replicas, the session's
``redis_cluster``): the ``redis+cluster://`` URL, fire / fire_many / listen on APIs
whose streams are spread over the three shards, listeners whose streams are in several
slots, pipelines across slots, schema sharing, and the operator's tools (status,
inspect, dead letters)."""

from __future__ import annotations

import json
import threading
import time

import pytest

import lightbus_sync
from lightbus_sync import Api, DeadLetter, Event, Parameter
from lightbus_sync.cluster import group_by_slot, slot_of
from lightbus_sync.errors import ConfigurationError
from lightbus_sync.ops import collect_status, follow_events, list_dead_letters, purge, recent_events, replay
from lightbus_sync.ops.status import check_status, render_status
from lightbus_sync.redis_url import check_url, is_cluster_url, parse_cluster_url, redact
from lightbus_sync.transport import RedisTransport
from lightbus_sync.wire import encode_event
from ops_apps.ops_support import cli  # noqa: F401 (fixture)
from runner_apps.harness import fast_config, wait_until

API_NAMES = [f"clusterbus.api{i}" for i in range(9)]
PER_EVENT_API = "clusterbus.perevent"
PER_EVENT_EVENTS = ("created", "updated", "deleted", "archived")


def _define(name: str, events: dict) -> type:
    meta = type("Meta", (), {"name": name})
    return type(name.replace(".", "_").title().replace("_", ""), (Api,), {**events, "Meta": meta})


for _name in API_NAMES:
    _define(_name, {"happened": Event(parameters=(Parameter("n", int),))})
_define(PER_EVENT_API, {event: Event(parameters=(Parameter("n", int),)) for event in PER_EVENT_EVENTS})


def stream_of(api: str) -> str:
    return f"{api}.*:stream"


def cluster_config(**redis) -> dict:
    config = fast_config(redis)
    config["apis"][PER_EVENT_API] = {"event_transport": {"redis": {"stream_use": "per_event"}}}
    return config


@pytest.fixture
def make_bus(cluster_url):
    buses = []

    def make(service_name: str = "clsvc", process_name: str = "p1", **redis) -> lightbus_sync.Bus:
        bus = lightbus_sync.create(redis_url=cluster_url, service_name=service_name, process_name=process_name,
                                   config=cluster_config(**redis))
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def pending(client, stream: str, group: str) -> int:
    return int(client.xpending(stream, group)["pending"])


# --- the URL ---------------------------------------------------------------------------


def test_cluster_urls_are_parsed_checked_and_redacted():
    url = "redis+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3/0"
    assert is_cluster_url(url) and not is_cluster_url("redis://10.0.0.1:7000/0")
    nodes, options = parse_cluster_url(url)
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 6379)]
    assert options == {"username": "app", "password": "s3cret"}
    assert parse_cluster_url("rediss+cluster://h:1")[1] == {"ssl": True}
    assert check_url(url) == url
    assert redact(url) == "redis+cluster://app:***@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3/0"
    for bad, why in (("redis+cluster://", "no node"), ("redis+cluster://h:1/3", "only database 0"),
                     ("redis+cluster://h:x", "bad node"), ("redis+cluster://h:1?ssl=true", "query")):
        with pytest.raises(ValueError, match=why):
            check_url(bad)
    with pytest.raises(ConfigurationError, match="only database 0"):
        lightbus_sync.create(redis_url="redis+cluster://127.0.0.1:7000/1", service_name="x")


def test_a_cluster_that_cannot_be_reached_is_bus_unavailable_not_a_crash():
    """Creating a bus never connects; firing retries within event_fire_timeout and then
    raises BusUnavailable, as with a single Redis that is down."""
    bus = lightbus_sync.create(redis_url="redis+cluster://127.0.0.1:1,127.0.0.1:2", service_name="x",
                               config={"apis": {"default": {"event_fire_timeout": 0.3}}})
    try:
        started = time.monotonic()
        with pytest.raises(lightbus_sync.BusUnavailable, match="redis\\+cluster://127.0.0.1:1"):
            bus.api(API_NAMES[0]).happened.fire(n=1)
        assert time.monotonic() - started < 5
    finally:
        bus.close()


def test_a_single_redis_given_as_a_cluster_fails_at_once(redis_url):
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    bus = lightbus_sync.create(redis_url=f"redis+cluster://127.0.0.1:{port}", service_name="x")
    try:
        with pytest.raises(lightbus_sync.TransportError, match="not in cluster mode"):
            bus.api(API_NAMES[0]).happened.fire(n=1)
    finally:
        bus.close()


# --- fire, fire_many, listen across the shards -------------------------------------------


def test_the_apis_streams_are_spread_over_all_three_masters(redis_cluster, cluster_url):
    masters = {redis_cluster.master_of_key(stream_of(api)) for api in API_NAMES}
    assert masters == set(redis_cluster.masters()) and len(masters) == 3
    per_event = [f"{PER_EVENT_API}.{event}:stream" for event in PER_EVENT_EVENTS]
    assert len({redis_cluster.master_of_key(s) for s in per_event}) >= 2
    # Helper keys share their stream's slot (the scripts name them together in KEYS).
    for api in API_NAMES:
        stream = stream_of(api)
        assert {slot_of(stream), slot_of("{" + stream + "}:dead"), slot_of("{" + stream + "}:attempts"),
                slot_of("{" + stream + "}:replay:svc-l")} == {slot_of(stream)}


def test_fire_fire_many_and_listeners_over_every_shard(make_bus, cluster_client, redis_cluster):
    """Nine per-API streams over three shards, one per-event API whose streams are in
    several slots; a listener per API, one listener over all nine APIs (nine slots), one
    over the per-event API's four streams. Every event is handled by each listener that
    should see it, once, and nothing stays pending."""
    bus = make_bus()
    seen: dict[str, list] = {}
    lock = threading.Lock()

    def recorder(listener):
        def handle(event_message, n):
            with lock:
                seen.setdefault(listener, []).append((event_message.api_name, event_message.event_name, n))
        return handle

    for index, api in enumerate(API_NAMES):
        bus.api(api).happened.listen(recorder(f"api{index}"), listener_name=f"api{index}")
    bus.listen_many([bus.api(api).happened for api in API_NAMES], recorder("all"), listener_name="all")
    bus.listen_many([bus.api(PER_EVENT_API).event(e) for e in PER_EVENT_EVENTS], recorder("perevent"),
                    listener_name="perevent")
    producer = make_bus(service_name="producer", process_name="producer")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        # One read loop per hash slot: the nine-API listener has eight besides its own.
        names = {thread.name for thread in threading.enumerate()}
        assert {f"lightbus-reader-all-{i}" for i in range(2, 10)} <= names
        for index, api in enumerate(API_NAMES):
            producer.api(api).happened.fire(n=index)
            messages = producer.api(api).happened.fire_many([{"n": 100 + index}, {"n": 200 + index}])
            assert [m.stream for m in messages] == [stream_of(api)] * 2
        for n, event in enumerate(PER_EVENT_EVENTS):
            producer.api(PER_EVENT_API).event(event).fire(n=n)
            producer.api(PER_EVENT_API).event(event).fire_many([{"n": 10 + n}])

        def done():
            with lock:
                return len(seen.get("all", [])) == 27 and len(seen.get("perevent", [])) == 8 and all(
                    len(seen.get(f"api{i}", [])) == 3 for i in range(len(API_NAMES)))

        wait_until(done, 20, what="every listener got its events")
        time.sleep(0.3)
    assert sorted(n for _, _, n in seen["all"]) == sorted(
        [i for i in range(9)] + [100 + i for i in range(9)] + [200 + i for i in range(9)])
    for index, api in enumerate(API_NAMES):
        assert sorted(seen[f"api{index}"]) == [(api, "happened", index), (api, "happened", 100 + index),
                                               (api, "happened", 200 + index)]
        assert pending(cluster_client, stream_of(api), f"clsvc-api{index}") == 0
        assert pending(cluster_client, stream_of(api), "clsvc-all") == 0
    assert sorted(seen["perevent"]) == sorted(
        [(PER_EVENT_API, e, n) for n, e in enumerate(PER_EVENT_EVENTS)]
        + [(PER_EVENT_API, e, 10 + n) for n, e in enumerate(PER_EVENT_EVENTS)])
    for event in PER_EVENT_EVENTS:
        assert pending(cluster_client, f"{PER_EVENT_API}.{event}:stream", "clsvc-perevent") == 0
    assert runner.stats.get("processed") == 27 + 27 + 8 and runner.stats.get("dead_lettered") == 0


def test_pipelined_writes_and_acks_across_slots(cluster_url, cluster_client, redis_cluster):
    """One add_events() batch over streams of the three shards (redis-py's ClusterPipeline
    sends one pipeline per node), then one ack() batch over them."""
    transport = RedisTransport(cluster_url)
    try:
        assert transport.is_cluster and transport.server_version() >= (6, 2)
        assert abs(transport.server_time() - time.time()) < 60
        streams = [stream_of(api) for api in API_NAMES]
        assert len({redis_cluster.master_of_key(s) for s in streams}) == 3
        items = [(stream, encode_event(f"id-{i}", API_NAMES[i % 9], "happened", 1, {"n": i}))
                 for i, stream in enumerate(streams * 3)]
        ids = transport.add_events(items, 1000, 5)
        assert len(ids) == 27
        for stream in streams:
            assert cluster_client.xlen(stream) == 3
            transport.ensure_group(stream, "g", "0")
        assert [len(group) for group in transport.slot_groups(streams)] == [1] * 9
        read = transport.read_group(transport.client, "g", "c", {s: ">" for s in streams}, 10, None)
        assert sorted(stream for stream, _ in read) == sorted(streams)  # one XREADGROUP per slot
        transport.ack({(stream, "g"): [entry_id for entry_id, _ in entries] for stream, entries in read})
        assert all(pending(cluster_client, s, "g") == 0 for s in streams)
        blocked = time.monotonic()
        assert transport.read_group(transport.reading_client(300), "g", "c", {s: ">" for s in streams}, 10, 300) == []
        assert 0.25 < time.monotonic() - blocked < 2  # blocking split between the slots, not 9 x 300 ms
    finally:
        transport.close()


# --- schemas ---------------------------------------------------------------------------


def test_schemas_are_shared_on_the_cluster(make_bus, cluster_client, redis_cluster):
    """SET schema:<api> on several shards, SADD schemas; SMEMBERS + one MGET per slot
    loads them (a single MGET across slots would fail with CROSSSLOT)."""
    bus = make_bus()
    bus.schemas.publish(API_NAMES)
    names = {n.decode() for n in cluster_client.smembers("schemas")}
    assert set(API_NAMES) <= names
    assert len({redis_cluster.master_of_key(f"schema:{api}") for api in API_NAMES}) == 3
    document = json.loads(cluster_client.get(f"schema:{API_NAMES[0]}"))
    remote = {}
    for index in range(6):  # APIs no process here defines: only their schemas are on the bus
        name = f"clusterremote.api{index}"
        remote[name] = json.dumps({**document, "name": name})
    transport = bus.transport_for("default")
    transport.store_schemas(remote, 60)
    assert len({redis_cluster.master_of_key(f"schema:{name}") for name in remote}) >= 2
    other = make_bus(service_name="other")
    other.schemas.load_remote()
    assert set(remote) <= set(other.schemas.remote_names())
    message = other.api("clusterremote.api3").happened.fire(n=7)  # validated against the remote schema
    assert message.stream == stream_of("clusterremote.api3")
    with pytest.raises(lightbus_sync.InvalidFireCall):
        other.api("clusterremote.api3").happened.fire(n="seven")


# --- operations ------------------------------------------------------------------------


def test_status_inspect_and_dead_letters_on_the_cluster(make_bus, cluster_client, cli, cluster_url):
    bus = make_bus()
    handled: list[int] = []

    def handle(n):
        if n % 4 == 0:
            raise DeadLetter("multiple of four")
        handled.append(n)

    apis = API_NAMES[:3]  # three shards
    for api in apis:
        bus.api(api).happened.listen(handle, listener_name=f"h{api[-1]}")
    with bus.listening() as runner:
        assert runner.wait_until_ready(10)
        for index, api in enumerate(apis):
            bus.api(api).happened.fire_many([{"n": n} for n in range(index * 10, index * 10 + 6)])
        for event in PER_EVENT_EVENTS:
            bus.api(PER_EVENT_API).event(event).fire(n=1)
        wait_until(lambda: runner.stats.get("processed") + runner.stats.get("dead_lettered") == 18, 15,
                   what="18 handled or dead-lettered")

        status = collect_status(bus, [*apis, PER_EVENT_API])
        by_stream = {s.stream: s for s in status.streams}
        for index, api in enumerate(apis):
            stream = by_stream[stream_of(api)]
            assert stream.exists and stream.length == 6
            [group] = [g for g in stream.groups if g.name == f"clsvc-h{api[-1]}"]
            assert group.pending == 0
            assert stream.dead_letters == len([n for n in range(index * 10, index * 10 + 6) if n % 4 == 0])
        assert {f"{PER_EVENT_API}.{e}:stream" for e in PER_EVENT_EVENTS} <= set(by_stream)
        assert "clusterbus.api0" in render_status(status)
        assert check_status(status, max_dead_letters=100) == []

        newest = recent_events(bus, apis[1], limit=3)
        assert [e.parameters["n"] for e in newest] == [15, 14, 13]
        per_event = recent_events(bus, PER_EVENT_API, limit=10)  # four streams, three slots or so
        assert sorted(e.event_name for e in per_event) == sorted(PER_EVENT_EVENTS)

        followed: list = []
        follower = threading.Thread(target=follow_events, args=(bus, PER_EVENT_API), kwargs=dict(
            on_event=followed.append, block_ms=200, max_events=2), daemon=True)
        follower.start()
        time.sleep(0.5)
        bus.api(PER_EVENT_API).deleted.fire(n=99)
        bus.api(PER_EVENT_API).created.fire(n=98)
        follower.join(10)
        assert sorted(e.parameters["n"] for e in followed) == [98, 99]

        letters = list_dead_letters(bus)  # SCAN on every master
        assert sorted(letter.event().parameters["n"] for letter in letters) == [0, 4, 12, 20, 24]
        assert len({letter.dead_stream for letter in letters}) == 3
        code, out, err = cli("dead-letters", "list", "--redis-url", cluster_url, "--json")
        assert code == 0, err
        assert len(json.loads(out)) == 5
        code, out, err = cli("status", "--redis-url", cluster_url, "--api", apis[2], "--json")
        assert code == 0, err
        assert json.loads(out)["streams"][0]["stream"] == stream_of(apis[2])
        code, out, err = cli("inspect", apis[0], "--redis-url", cluster_url, "--limit", "2")
        assert code == 0, err
        assert "clusterbus.api0.happened" in out

        assert purge(bus, letters[1:]) == 4  # records: dead ids of two shards may be equal
        result = replay(bus, [letters[0]])
        assert len(result.replayed) == 1
        # Back to its group alone (its replay stream, in the stream's slot): handled
        # again, it is dead-lettered again.
        wait_until(lambda: [l.dead_id for l in list_dead_letters(bus)] not in ([], [letters[0].dead_id]), 10,
                   what="the replayed entry handled again")
        [again] = list_dead_letters(bus)
        assert again.event().parameters["n"] == letters[0].event().parameters["n"]
    assert sorted(handled) == sorted(n for i in range(3) for n in range(i * 10, i * 10 + 6) if n % 4)


def test_group_by_slot_keeps_first_seen_order():
    keys = ["a:stream", "{a:stream}:dead", "b:stream", "{b:stream}:replay:g", "a:stream2"]
    groups = group_by_slot(keys)
    assert groups[0][:2] == ["a:stream", "{a:stream}:dead"]
    assert ["b:stream", "{b:stream}:replay:g"] in groups
    assert sum(len(g) for g in groups) == len(keys)
