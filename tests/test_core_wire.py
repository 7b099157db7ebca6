"""The wire format (see /work/shared/wire-format.md): the exact fields of an entry, the
XADD command itself compared with a capture from real Lightbus 1.1.2, MAXLEN trimming,
and the stream keys."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.wire import METADATA_FIELDS, decode_entry, is_noop

from schema_apps import lightbus_types

FIRED_EVENT = json.loads(
    (Path(__file__).parent / "fixtures" / "lightbus_wire" / "fired_event.json").read_text(encoding="utf-8"))


class CoreWireApi(Api):
    changed = Event(parameters=[
        Parameter("name", str),
        Parameter("data", dict),
        Parameter("count", int, default=0),
        Parameter("flag", bool, default=False),
    ])
    other = Event(parameters=["value"])

    class Meta:
        name = "core_wire"
        version = 4


class CoreWirePerEventApi(Api):
    happened = Event(parameters=["value"])

    class Meta:
        name = "core_wire.split"


@pytest.fixture
def make_bus(redis_url):
    buses = []

    def make(**config):
        bus = lightbus_sync.create(redis_url=redis_url, service_name="core-wire", config=config or None)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def _node_size(redis_client) -> int:
    reply = redis_client.config_get("stream-node-max-entries")
    value = reply.get("stream-node-max-entries", reply.get(b"stream-node-max-entries"))
    return int(value)


def _redis_settings(**settings):
    return {"apis": {"default": {"event_transport": {"redis": settings}}}}


def _fields(redis_client, stream):
    """[(field, value)] of the stream's only entry, as str, in the order Redis holds them."""
    entries = redis_client.xrange(stream)
    assert len(entries) == 1, entries
    return entries[0][0].decode(), [(k.decode(), v.decode()) for k, v in entries[0][1].items()]


def test_entry_fields_are_exactly_the_four_metadata_then_parameters(make_bus, redis_client):
    bus = make_bus()
    message = bus.core_wire.changed.fire(name="zoë ☃", data={"b": [1, 2.5], "a": {"y": None, "x": "é"}})
    entry_id, fields = _fields(redis_client, "core_wire.*:stream")
    assert entry_id == message.stream_id
    assert [k for k, _ in fields] == ["id", "api_name", "event_name", "version", ":name", ":data", ":count", ":flag"]
    values = dict(fields)
    assert values["id"] == message.id and str(UUID(values["id"])) == values["id"]
    assert (values["api_name"], values["event_name"], values["version"]) == ("core_wire", "changed", "4")
    # sorted keys, ", " and ": " separators, ASCII escapes
    assert values[":name"] == '"zo\\u00eb \\u2603"'
    assert values[":data"] == '{"a": {"x": "\\u00e9", "y": null}, "b": [1, 2.5]}'
    assert values[":count"] == "0" and values[":flag"] == "false"
    for key, value in fields[4:]:
        assert value == json.dumps(json.loads(value), sort_keys=True, ensure_ascii=True)
        assert value.isascii()
    assert tuple(k for k, _ in fields[:4]) == METADATA_FIELDS


def test_same_fields_and_values_as_real_lightbus(make_bus, redis_client):
    """tests/fixtures/lightbus_wire/fired_event.json: what Lightbus 1.1.2 wrote for this
    definition and these values. Ours: same names, same order, same values but the id."""
    bus = make_bus()
    bus.register(lightbus_types.AuthApi)
    message = bus.my_company.auth.user_updated.fire(
        username="zoë",
        user_id=UUID("12345678-1234-5678-1234-567812345678"),
        updated_at=datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
        birthday=date(1990, 12, 31),
        balance=Decimal("1234.50"),
        role=lightbus_types.Role.ADMIN,
        tags=["b", "a", "snowman ☃"],
        scores={"z": 1, "a": 2},
        address=lightbus_types.Address(street="1 Main St", city="Springfield"),
        location=lightbus_types.Point(x=1.5, y=-2.0),
        is_admin=True,
        note=None,
    )
    assert redis_client.keys("*:stream") == [FIRED_EVENT["stream"].encode()]
    _, ours = _fields(redis_client, FIRED_EVENT["stream"])
    theirs = [tuple(pair) for pair in FIRED_EVENT["fields"]]
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    assert ours[1:] == theirs[1:]
    assert ours[0] == ("id", message.id) and theirs[0][0] == "id"


def _monitor(port: int, stop: threading.Event, lines: list[str], ready: threading.Event) -> None:
    """MONITOR over a raw socket: the lines exactly as redis-cli would print them."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"MONITOR\r\n")
        buffer = b""
        while b"\r\n" not in buffer:
            buffer += sock.recv(65536)
        assert buffer.startswith(b"+OK"), buffer
        buffer = buffer.split(b"\r\n", 1)[1]
        ready.set()
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\r\n")
            lines.extend(line.decode("utf-8", "replace") for line in complete)


def test_the_xadd_command_is_byte_for_byte_lightbus(make_bus, redis_server, redis_url):
    """The XADD seen by MONITOR equals Lightbus's (fixture), event id aside: MAXLEN ~
    100000 (Lightbus's default cap, set here explicitly), '*', field order, quoting of every value."""
    bus = make_bus(**_redis_settings(max_stream_length=100_000))
    bus.register(lightbus_types.AuthApi)
    lines: list[str] = []
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=_monitor, args=(redis_server.port, stop, lines, ready), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        message = bus.my_company.auth.user_updated.fire(
            username="zoë", user_id=UUID("12345678-1234-5678-1234-567812345678"),
            updated_at=datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
            birthday=date(1990, 12, 31), balance=Decimal("1234.50"), role=lightbus_types.Role.ADMIN,
            tags=["b", "a", "snowman ☃"], scores={"z": 1, "a": 2},
            address=lightbus_types.Address(street="1 Main St", city="Springfield"),
            location=lightbus_types.Point(x=1.5, y=-2.0), is_admin=True, note=None,
        )
        deadline = threading.Event()
        for _ in range(50):
            if any('"XADD"' in line for line in lines):
                break
            deadline.wait(0.1)
    finally:
        stop.set()
        thread.join(5)
    xadds = [line.split("] ", 1)[1] for line in lines if '"XADD"' in line]
    assert len(xadds) == 1, lines
    expected = FIRED_EVENT["xadd_monitor_line"].replace(FIRED_EVENT["lightbus_event_message_id"], message.id)
    assert xadds[0] == expected


def test_version_comes_from_meta_and_metadata_is_raw_text(make_bus, redis_client):
    make_bus().core_wire.other.fire(value="x")
    _, fields = _fields(redis_client, "core_wire.*:stream")
    values = dict(fields)
    assert values["version"] == "4" and values["api_name"] == "core_wire"  # not JSON: no quotes
    assert values[":value"] == '"x"'


def test_max_stream_length_trims_approximately(make_bus, redis_client):
    bus = make_bus(**_redis_settings(max_stream_length=10))
    node_size = _node_size(redis_client)
    for i in range(3):
        bus.core_wire.other.fire_many([{"value": n} for n in range(100)])
        bus.core_wire.other.fire(value=i)
    length = redis_client.xlen("core_wire.*:stream")
    assert 10 <= length <= 10 + node_size < 303
    newest = decode_entry(redis_client.xrevrange("core_wire.*:stream", count=1)[0][1])
    assert newest.parameters == {"value": 2}  # trimming drops the oldest


@pytest.mark.parametrize("setting", [0, None])
def test_max_stream_length_zero_or_null_means_no_trim(make_bus, redis_client, setting):
    bus = make_bus(**_redis_settings(max_stream_length=setting))
    node_size = _node_size(redis_client)
    count = 2 * node_size + 50
    bus.core_wire.other.fire_many([{"value": n} for n in range(count)])
    assert redis_client.xlen("core_wire.*:stream") == count


def test_by_default_no_cap_trims_the_stream(make_bus, redis_client):
    bus = make_bus()
    assert bus.config.api("core_wire").redis.max_stream_length is None
    node_size = _node_size(redis_client)
    count = 2 * node_size + 50
    bus.core_wire.other.fire_many([{"value": n} for n in range(count)])
    bus.core_wire.other.fire(value="last")
    assert redis_client.xlen("core_wire.*:stream") == count + 1


def test_stream_keys_per_api_and_per_event(make_bus, redis_client):
    per_api = make_bus()
    per_api.core_wire.changed.fire(name="a", data={})
    per_api.core_wire.other.fire(value=1)
    assert set(redis_client.keys("*:stream")) == {b"core_wire.*:stream"}
    assert redis_client.xlen("core_wire.*:stream") == 2
    redis_client.flushall()

    per_event = make_bus(**_redis_settings(stream_use="per_event"))
    per_event.core_wire.changed.fire(name="a", data={})
    per_event.core_wire.other.fire(value=1)
    per_event.core_wire.split.happened.fire(value=2)
    assert set(redis_client.keys("*:stream")) == {
        b"core_wire.changed:stream", b"core_wire.other:stream", b"core_wire.split.happened:stream"}


def test_stream_use_can_differ_per_api(make_bus, redis_client):
    bus = make_bus(apis={"core_wire.split": {"event_transport": {"redis": {"stream_use": "per_event"}}}})
    bus.core_wire.other.fire(value=1)
    bus.core_wire.split.happened.fire(value=2)
    assert set(redis_client.keys("*:stream")) == {b"core_wire.*:stream", b"core_wire.split.happened:stream"}


def test_decode_entry_reads_lightbus_entries_and_recognises_noop():
    fields = {k.encode(): v.encode() for k, v in FIRED_EVENT["fields"]}
    raw = decode_entry(fields)
    assert raw.id == FIRED_EVENT["lightbus_event_message_id"]
    assert (raw.api_name, raw.event_name, raw.version) == ("my_company.auth", "user_updated", 3)
    assert raw.parameters["username"] == "zoë" and raw.parameters["scores"] == {"a": 2, "z": 1}
    assert is_noop({b"": b""}) and not is_noop(fields)
    uuid.UUID(raw.id)


@pytest.mark.parametrize("fields, needle", [
    (None, "no fields"),
    ({}, "no fields"),
    ({b"id": b"1", b"api_name": b"a", b"event_name": b"e"}, "missing metadata field(s): version"),
    ({b"id": b"", b"api_name": b"a", b"event_name": b"e", b"version": b"1"}, "missing metadata field(s): id"),
    ({b"id": b"1", b"api_name": b"a", b"event_name": b"e", b"version": b"one"}, "'one' is not an integer"),
    ({b"id": b"1", b"api_name": b"a", b"event_name": b"e", b"version": b"1", b"trace_id": b"x"},
     "unknown metadata field 'trace_id'"),
    ({b"id": b"1", b"api_name": b"a", b"event_name": b"e", b"version": b"1", b":p": b"{nope"},
     "parameter 'p' is not valid JSON"),
    ({b"id": b"1", b"api_name": b"a", b"event_name": b"e", b"version": b"1", b":p": b"\xff"}, "UTF-8"),
])
def test_decode_entry_names_what_is_wrong(fields, needle):
    with pytest.raises(lightbus_sync.MalformedEntry) as excinfo:
        decode_entry(fields)
    assert needle in str(excinfo.value)


def test_decode_entry_skips_what_lightbus_skips():
    fields = {b"id": b"1", b"api_name": b"a", b"event_name": b"e", b"version": b"2", b"": b"",
              b"native_id": b"1-0", b":p": b"[1]"}
    raw = decode_entry(fields)
    assert (raw.id, raw.version, raw.parameters) == ("1", 2, {"p": [1]})
