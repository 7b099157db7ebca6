"""lightbus_sync.ops.status and ``lightbus-sync status``, on real Redis servers (6.2 and
7): streams, groups, consumers, oldest pending, lag (unknown before Redis 7), dead
letters, --json, and --check exit codes."""

from __future__ import annotations

import json
import time

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.ops.status import check_status, collect_status, render_status
from lightbus_sync.runner import Runner
from lightbus_sync.transport import RedisTransport
from ops_apps.ops_support import (  # noqa: F401 (fixtures)
    cli,
    cli_process,
    fast_config,
    ops_bus,
    ops_redis7_url,
    wait_until,
)


class OpsStShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int),))
    order_cancelled = Event(parameters=(Parameter("order_id", int),))

    class Meta:
        name = "opsst.shop"


SHOP = "opsst.shop.*:stream"
SHOP_DEAD = "{opsst.shop.*:stream}:dead"


def _stream(status, name):
    [found] = [s for s in status.streams if s.stream == name]
    return found


def _group(stream_status, name):
    [found] = [g for g in stream_status.groups if g.name == name]
    return found


def _id_ms(entry_id) -> int:
    return int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])


@pytest.fixture
def busy_bus(ops_bus, redis_client):
    """A real runner dead-lettered 2 of 6 orders (group svc-billing, all acked); group
    'audit' read 2 entries and left them pending, 4 unread."""
    bus = ops_bus()

    def bill(order_id: int) -> None:
        if order_id % 3 == 0:
            raise lightbus_sync.DeadLetter(f"order {order_id}")

    bus.opsst.shop.order_placed.listen(bill, listener_name="billing", since="0")
    for i in range(1, 7):
        bus.opsst.shop.order_placed.fire(order_id=i)
    with Runner(bus, threads=2) as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: redis_client.xlen(SHOP_DEAD) == 2, what="2 dead letters")
        wait_until(lambda: redis_client.xpending(SHOP, "svc-billing")["pending"] == 0, what="acked")
    redis_client.xgroup_create(SHOP, "audit", id="0")
    redis_client.xreadgroup("audit", "auditor-1", {SHOP: ">"}, count=2)
    return bus


def test_status_of_streams_groups_consumers_and_dead_letters(busy_bus, redis_client, redis_server):
    status = collect_status(busy_bus, ["opsst.shop"], include_local=False)
    shop = _stream(status, SHOP)
    entries = redis_client.xrange(SHOP)
    assert shop.exists and shop.length == 6 and shop.api_name == "opsst.shop" and shop.event_name is None
    assert shop.first_id == entries[0][0].decode() and shop.last_id == entries[-1][0].decode()
    assert int(shop.first_time.timestamp() * 1000) == _id_ms(entries[0][0])
    assert shop.dead_letters == 2 and shop.dead_letter_stream == SHOP_DEAD
    assert [g.name for g in shop.groups] == ["audit", "svc-billing"]

    billing = _group(shop, "svc-billing")
    assert billing.pending == 0 and billing.oldest_pending_id is None and billing.oldest_pending_age is None
    assert billing.dead_letters == 2
    assert billing.last_delivered_id == entries[-1][0].decode()
    assert [c.name for c in billing.consumers] == ["p1"]

    audit = _group(shop, "audit")
    assert audit.pending == 2 and audit.dead_letters == 0
    assert audit.oldest_pending_id == entries[0][0].decode()
    assert 0 <= audit.oldest_pending_age < 5
    assert audit.oldest_pending_consumer == "auditor-1" and audit.oldest_pending_deliveries == 1
    assert audit.oldest_pending_entry_age >= audit.oldest_pending_age - 0.01
    [auditor] = audit.consumers
    assert auditor.name == "auditor-1" and auditor.pending == 2 and auditor.idle >= 0
    if redis_server.version >= (7,):
        assert audit.lag == 4 and billing.lag == 0
    else:
        assert audit.lag is None and billing.lag is None

    text = render_status(status)
    lines = text.splitlines()
    assert lines[0].split() == ["STREAM", "API", "LENGTH", "FIRST", "ENTRY", "LAST", "ENTRY", "DEAD", "LETTERS",
                                "TRIM", "POINT", "HELD", "BY"]
    assert (shop.trim_held_by, shop.trim_reason, shop.trim_point) == ("audit", "pending", entries[0][0].decode())
    assert any(line.startswith(SHOP) and line.endswith(f"audit (pending {entries[0][0].decode()})") for line in lines)
    assert (audit.lost, billing.lost) == (0, 0)
    assert any(line.startswith(SHOP) and " 6 " in line for line in lines)
    group_header = next(i for i, line in enumerate(lines) if line.startswith("STREAM") and "GROUP" in line and "CONSUMERS" in line)
    audit_line = next(line for line in lines[group_header:] if " audit " in line)
    assert audit_line.split()[2:4] == ["1", "2"]
    # columns line up: every row of a table starts its GROUP column at the same offset
    offset = lines[group_header].index("GROUP")
    assert audit_line[offset:].startswith("audit")
    assert "auditor-1" in text
    data = status.as_dict()
    json.dumps(data)
    assert data["streams"][0]["groups"][0]["consumers"][0]["name"] == "auditor-1"


def test_missing_stream_and_per_event_streams(ops_bus, redis_client):
    config = fast_config()
    config["apis"]["opsst.shop"] = {"event_transport": {"redis": {"stream_use": "per_event"}}}
    config["apis"]["remote.billing"] = {"event_transport": {"redis": {"stream_use": "per_event"}}}
    bus = ops_bus(config=config)
    bus.opsst.shop.order_placed.fire(order_id=1)
    status = collect_status(bus, ["opsst.shop", "opsst.nothing"], include_local=False)
    names = [s.stream for s in status.streams]
    # per_event: one stream per event of the (local) definition; a missing one is shown
    assert names == ["opsst.shop.order_cancelled:stream", "opsst.shop.order_placed:stream", "opsst.nothing.*:stream"]
    placed = _stream(status, "opsst.shop.order_placed:stream")
    assert placed.exists and placed.length == 1 and placed.event_name == "order_placed"
    cancelled = _stream(status, "opsst.shop.order_cancelled:stream")
    assert not cancelled.exists and cancelled.length == 0 and cancelled.groups == []
    assert "(none)" in render_status(status)
    # an API not defined anywhere, per_event: its streams are found with SCAN
    redis_client.xadd("remote.billing.invoice_sent:stream", {"": ""})
    redis_client.xadd("remote.billing.nested.other:stream", {"": ""})
    status = collect_status(bus, ["remote.billing"], include_local=False)
    assert [s.stream for s in status.streams] == ["remote.billing.invoice_sent:stream"]


def test_status_with_a_bare_transport_and_local_apis(ops_bus, redis_client, redis_url):
    bus = ops_bus()
    bus.opsst.shop.order_placed.fire(order_id=1)
    status = collect_status(bus)  # the local APIs of the bus (the process catalogue here)
    assert SHOP in [s.stream for s in status.streams]
    transport = RedisTransport(redis_url)
    try:
        status = collect_status(transport, ["opsst.shop"])
        assert [s.stream for s in status.streams] == [SHOP] and status.streams[0].length == 1
    finally:
        transport.close()


@pytest.mark.parametrize("server_fixture", ["redis62_server", "redis7_server"])
def test_lag_is_known_on_redis7_unknown_before_and_checked_on_both(server_fixture, request):
    server = request.getfixturevalue(server_fixture)
    server.flushall()
    client = server.client()
    transport = RedisTransport(server.url)
    try:
        ids = [client.xadd("lag.*:stream", {"n": str(i)}) for i in range(5)]
        client.xgroup_create("lag.*:stream", "g", id="0")
        client.xreadgroup("g", "c", {"lag.*:stream": ">"}, count=2)
        client.xack("lag.*:stream", "g", *ids[:2])
        status = collect_status(transport, ["lag"])
        [group] = status.streams[0].groups
        if server.version >= (7,):
            assert group.lag == 3
            assert " 3 " in render_status(status).splitlines()[4] + " "
        else:
            assert group.lag is None
            assert "unknown" in render_status(status)
        problems = check_status(status, max_lag=2)
        assert [p.kind for p in problems] == ["lag"] and problems[0].group == "g"
        assert check_status(status, max_lag=3) == []
        assert check_status(status, max_lag=1000) == []
        # on any version, lag counting stops past the threshold
        if group.lag is None:
            assert "counted" in problems[0].message
    finally:
        transport.close()
        client.close()


def test_check_pending_age_and_dead_letters(busy_bus, redis_client):
    # make the 2nd pending entry (not the lowest) look undelivered for 30 s
    rows = redis_client.xpending_range(SHOP, "audit", min="-", max="+", count=10)
    second = rows[1]["message_id"]
    redis_client.xclaim(SHOP, "audit", "auditor-1", 0, [second], idle=30_000, justid=True)
    status = collect_status(busy_bus, ["opsst.shop"], include_local=False)
    problems = check_status(status, max_pending_age=10)
    assert [(p.kind, p.group) for p in problems] == [("pending_age", "audit")]
    assert second.decode() in problems[0].message and problems[0].value >= 30
    assert check_status(status, max_pending_age=60) == []
    problems = check_status(status, max_dead_letters=1)
    assert [(p.kind, p.value) for p in problems] == [("dead_letters", 2)]
    assert check_status(status, max_dead_letters=2) == []


# --- CLI -------------------------------------------------------------------------------


def test_cli_status_table_json_and_check_exit_codes(busy_bus, redis_url, redis_client, cli):
    code, out, err = cli("status", "--redis-url", redis_url, "--api", "opsst.shop")
    assert code == 0, err
    assert out.startswith("STREAM") and SHOP in out and "auditor-1" in out and "OLDEST PENDING" in out

    code, out, err = cli("status", "--redis-url", redis_url, "--api", "opsst.shop", "--json")
    assert code == 0, err
    data = json.loads(out)
    [shop] = data["streams"]
    assert shop["stream"] == SHOP and shop["length"] == 6 and shop["dead_letters"] == 2
    assert {g["name"]: g["pending"] for g in shop["groups"]} == {"audit": 2, "svc-billing": 0}
    assert "check" not in data

    code, out, _ = cli("status", "--redis-url", redis_url, "--api", "opsst.shop", "--check", "--max-lag", "100",
                       "--max-pending-age", "60", "--max-dead-letters", "5")
    assert code == 0 and "check: OK" in out
    code, out, _ = cli("status", "--redis-url", redis_url, "--api", "opsst.shop", "--check", "--max-lag", "3")
    assert code == 1 and "check: FAILED" in out and "group audit: lag" in out
    code, out, _ = cli("status", "--redis-url", redis_url, "--api", "opsst.shop", "--check", "--max-dead-letters",
                       "1", "--json")
    assert code == 1
    check = json.loads(out)["check"]
    assert check["ok"] is False and check["thresholds"] == {"max_dead_letters": 1}
    assert [p["kind"] for p in check["problems"]] == ["dead_letters"]
    time.sleep(0.3)
    code, out, _ = cli("status", "--redis-url", redis_url, "--api", "opsst.shop", "--check", "--max-pending-age", "0.1")
    assert code == 1 and "not delivered for over" in out

    code, out, err = cli("status", "--redis-url", redis_url, "--api", "opsst.shop", "--check")
    assert code == 0 and "check: OK" in out, err  # --check alone: losses only, and there are none
    code, _, err = cli("status", "--redis-url", redis_url, "--max-lag", "3")
    assert code == 2 and "only apply with --check" in err


def test_cli_status_of_the_bus_module_and_errors(ops_bus, redis_url, redis_client, cli, tmp_path):
    code, out, err = cli("status", "--bus", "ops_cli_bus", "--redis-url", redis_url, "--json")
    assert code == 0, err
    streams = {s["stream"]: s for s in json.loads(out)["streams"]}
    assert "opscli.shop.*:stream" in streams and streams["opscli.shop.*:stream"]["exists"] is False
    code, _, err = cli("status", "--bus", "no_such_bus_module_here", "--redis-url", redis_url)
    assert code == 3 and "failed to import" in err
    code, _, err = cli("status", "--redis-url", "redis://127.0.0.1:1/0", "--api", "x", "--check", "--max-lag", "1")
    assert code == 2 and "Redis unavailable" in err


def test_console_script_status_check_in_a_child_process(busy_bus, redis_url):
    child = cli_process("status", "--redis-url", redis_url, "--api", "opsst.shop", "--check", "--max-lag", "3")
    out, err = child.communicate(timeout=60)
    assert child.returncode == 1, err
    assert "check: FAILED" in out
