"""lightbus_sync.ops.inspect and ``lightbus-sync inspect``, on a real Redis: recent
events newest first, decoded; --limit, --since (id or ISO datetime), --id, event
filters on per-API streams, per-event streams, APIs not defined locally, --follow."""

from __future__ import annotations

import datetime
import json
import signal
import threading
import time

import pytest

from lightbus_sync import Api, Event, Parameter
from lightbus_sync.ops.inspect import follow_events, recent_events, render_event, top_ids
from lightbus_sync.ops.streams import resolve_api_argument, since_to_min_id
from lightbus_sync.transport import RedisTransport
from ops_apps.ops_support import cli, cli_process, fast_config, ops_bus, wait_until  # noqa: F401 (fixtures)


class OpsInShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("customer", str),
                                     Parameter("when", datetime.datetime)))
    order_cancelled = Event(parameters=(Parameter("order_id", int),))

    class Meta:
        name = "opsin.shop"


SHOP = "opsin.shop.*:stream"
WHEN = datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def shop_bus(ops_bus):
    bus = ops_bus()
    for i in range(1, 6):
        bus.opsin.shop.order_placed.fire(order_id=i, customer=f"c{i}", when=WHEN)
    bus.opsin.shop.order_cancelled.fire(order_id=2)
    return bus


def test_recent_events_newest_first_decoded(shop_bus, redis_client):
    events = recent_events(shop_bus, "opsin.shop", limit=3)
    assert [e.event_name for e in events] == ["order_cancelled", "order_placed", "order_placed"]
    assert [e.parameters.get("order_id") for e in events] == [2, 5, 4]
    newest_entry = redis_client.xrevrange(SHOP, count=1)[0]
    assert events[0].entry_id == newest_entry[0].decode()
    assert events[0].event_id == newest_entry[1][b"id"].decode()
    assert events[1].parameters == {"order_id": 5, "customer": "c5", "when": "2024-05-01T10:00:00+00:00"}
    assert events[1].api_name == "opsin.shop" and events[1].version == 1 and events[1].stream == SHOP
    assert int(events[0].time.timestamp() * 1000) == int(events[0].entry_id.split("-")[0])
    assert len(recent_events(shop_bus, "opsin.shop", limit=0)) == 6
    text = render_event(events[1])
    assert "opsin.shop.order_placed v1" in text and 'customer = "c5"' in text and "order_id = 5" in text
    json.dumps([e.as_dict() for e in events])


def test_event_filter_since_and_id(shop_bus, redis_client):
    placed = recent_events(shop_bus, "opsin.shop", "order_placed", limit=10)
    assert [e.parameters["order_id"] for e in placed] == [5, 4, 3, 2, 1]
    entries = redis_client.xrange(SHOP)
    third_id = entries[2][0].decode()
    since = recent_events(shop_bus, "opsin.shop", limit=10, since=third_id)
    assert [e.entry_id for e in since] == [e[0].decode() for e in reversed(entries[2:])]
    # an ISO datetime: everything from then on; the future: nothing
    past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).isoformat()
    assert len(recent_events(shop_bus, "opsin.shop", limit=0, since=past)) == 6
    assert recent_events(shop_bus, "opsin.shop", since="2999-01-01T00:00:00Z") == []
    assert since_to_min_id("2024-05-01T10:00:00Z") == "1714557600000-0"
    assert since_to_min_id("1714557600000") == "1714557600000-0"
    with pytest.raises(Exception, match="ISO 8601"):
        since_to_min_id("yesterday")
    wanted = placed[2]
    [found] = recent_events(shop_bus, "opsin.shop", event_id=wanted.event_id)
    assert found == wanted
    [by_entry] = recent_events(shop_bus, "opsin.shop", event_id=wanted.entry_id)
    assert by_entry == wanted
    assert recent_events(shop_bus, "opsin.shop", event_id="no-such-event") == []
    # a retried fire writes the same event id twice: both are shown
    redis_client.xadd(SHOP, entries[0][1])
    assert len(recent_events(shop_bus, "opsin.shop", event_id=entries[0][1][b"id"].decode())) == 2


def test_noop_and_malformed_entries(shop_bus, redis_client):
    redis_client.xadd(SHOP, {"": ""})
    redis_client.xadd(SHOP, {"id": "x", "api_name": "opsin.shop", "event_name": "order_placed", "version": "1",
                             ":order_id": "{not json"})
    events = recent_events(shop_bus, "opsin.shop", limit=2)
    assert events[0].malformed and "not valid JSON" in events[0].malformed
    assert events[0].fields[":order_id"] == "{not json"
    assert events[1].event_name == "order_cancelled"  # the noop entry is skipped
    assert "MALFORMED" in render_event(events[0])
    assert events[0].as_dict()["fields"][":order_id"] == "{not json"


def test_apis_not_defined_locally_per_api_and_per_event(redis_client, redis_url):
    transport = RedisTransport(redis_url)
    try:
        fields = {"id": "e1", "api_name": "far.away", "event_name": "pinged", "version": "3", ":n": "1"}
        redis_client.xadd("far.away.*:stream", fields)
        [event] = recent_events(transport, "far.away")
        assert event.canonical_name == "far.away.pinged" and event.version == 3 and event.parameters == {"n": 1}
        assert resolve_api_argument(transport, "far.away.pinged") == ("far.away", "pinged")
        assert resolve_api_argument(transport, "far.away") == ("far.away", None)
    finally:
        transport.close()


def test_per_event_streams_merge_newest_first(ops_bus, redis_client):
    config = fast_config()
    config["apis"]["opsin.shop"] = {"event_transport": {"redis": {"stream_use": "per_event"}}}
    bus = ops_bus(config=config)
    # ids of different streams order only by their millisecond: space the fires
    bus.opsin.shop.order_placed.fire(order_id=1, customer="a", when=WHEN)
    time.sleep(0.005)
    bus.opsin.shop.order_cancelled.fire(order_id=1)
    time.sleep(0.005)
    bus.opsin.shop.order_placed.fire(order_id=2, customer="b", when=WHEN)
    events = recent_events(bus, "opsin.shop", limit=10)
    assert [(e.event_name, e.parameters["order_id"]) for e in events] == [
        ("order_placed", 2), ("order_cancelled", 1), ("order_placed", 1)]
    assert {e.stream for e in events} == {"opsin.shop.order_placed:stream", "opsin.shop.order_cancelled:stream"}
    assert [e.parameters["order_id"] for e in recent_events(bus, "opsin.shop", "order_cancelled")] == [1]


def test_follow_events_tails_new_ones(shop_bus):
    seen = []
    stop = threading.Event()
    start = top_ids(shop_bus, "opsin.shop")

    def fire_later():
        time.sleep(0.3)
        shop_bus.opsin.shop.order_cancelled.fire(order_id=7)
        shop_bus.opsin.shop.order_placed.fire(order_id=8, customer="c8", when=WHEN)
        shop_bus.opsin.shop.order_cancelled.fire(order_id=9)

    threading.Thread(target=fire_later, daemon=True).start()
    count = follow_events(shop_bus, "opsin.shop", "order_cancelled", on_event=seen.append, after=start, stop=stop,
                          block_ms=100, max_events=2)
    assert count == 2
    assert [e.parameters["order_id"] for e in seen] == [7, 9]
    # a stop event ends it too
    stop.set()
    assert follow_events(shop_bus, "opsin.shop", on_event=seen.append, stop=stop, block_ms=100) == 0


# --- CLI -------------------------------------------------------------------------------


def test_cli_inspect_text_json_and_unknown(shop_bus, redis_url, cli):
    code, out, err = cli("inspect", "opsin.shop", "--redis-url", redis_url, "--limit", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert "opsin.shop.order_cancelled v1" in lines[0] and "opsin.shop.order_placed v1" in out
    code, out, _ = cli("inspect", "opsin.shop.order_placed", "--redis-url", redis_url, "--json", "-n", "3")
    assert code == 0
    data = json.loads(out)
    assert [d["parameters"]["order_id"] for d in data] == [5, 4, 3]
    assert {d["event_name"] for d in data} == {"order_placed"}
    code, out, _ = cli("inspect", "opsin.shop", "--redis-url", redis_url, "--json", "--id", data[1]["event_id"])
    assert [d["entry_id"] for d in json.loads(out)] == [data[1]["entry_id"]]
    code, out, _ = cli("inspect", "opsin.shop", "--redis-url", redis_url, "--json", "--since", data[0]["entry_id"])
    assert [d["parameters"]["order_id"] for d in json.loads(out)] == [2, 5]
    code, _, err = cli("inspect", "opsin.nothing", "--redis-url", redis_url)
    assert code == 2 and "no stream for 'opsin.nothing'" in err
    code, _, err = cli("inspect", "opsin.shop", "--redis-url", redis_url, "--since", "last tuesday")
    assert code == 2 and "ISO 8601" in err


def test_cli_inspect_follow_until_ctrl_c(shop_bus, redis_url):
    child = cli_process("inspect", "opsin.shop", "--redis-url", redis_url, "--follow", "--json", "--limit", "2",
                        "--block-ms", "100")
    try:
        first = [json.loads(child.stdout.readline()) for _ in range(2)]
        # the history is printed oldest first, then new events as they come
        assert [e["parameters"]["order_id"] for e in first] == [5, 2]
        time.sleep(0.3)
        shop_bus.opsin.shop.order_placed.fire(order_id=42, customer="late", when=WHEN)
        new = json.loads(child.stdout.readline())
        assert new["parameters"]["order_id"] == 42 and new["event_name"] == "order_placed"
        child.send_signal(signal.SIGINT)
        child.wait(20)
        assert child.returncode == 0, child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
        child.stderr.close()
