"""Safe trimming (lightbus_sync.trimming) on real Redis 6.2, 7.x and 8.2 servers."""

from __future__ import annotations

import logging
import time

import pytest

from lightbus_sync.transport import RedisTransport
from lightbus_sync.trimming import Trimmer, trim_point

STREAM = "shop.*:stream"


def add(client, n: int, stream: str = STREAM) -> list[bytes]:
    return [client.xadd(stream, {"n": str(i)}) for i in range(n)]


def read(client, group: str, count: int, consumer: str = "c1", stream: str = STREAM) -> list[bytes]:
    reply = client.xreadgroup(group, consumer, {stream: ">"}, count=count)
    return [entry_id for entry_id, _ in reply[0][1]] if reply else []


def ids(client, stream: str = STREAM) -> list[bytes]:
    return [entry_id for entry_id, _ in client.xrange(stream)]


def test_the_oldest_pending_entry_holds_the_trim_point(each_redis_client, each_redis_transport):
    client = each_redis_client
    transport = each_redis_transport
    added = add(client, 10)
    client.xgroup_create(STREAM, "billing", id="0")
    client.xgroup_create(STREAM, "email", id="0")
    billing = read(client, "billing", 6)
    client.xack(STREAM, "billing", *billing[:3])  # 4th..6th stay pending
    email = read(client, "email", 8)
    client.xack(STREAM, "email", *email)

    point = trim_point(transport, STREAM)
    assert point.min_id == added[3].decode()
    assert point.held_by == "billing"
    assert {h.group: (h.needs_from, h.reason) for h in point.groups} == {
        "billing": (added[3].decode(), "pending"), "email": (added[7].decode(), "last-delivered")}

    result = Trimmer(transport, approximate=False).trim(STREAM)
    assert result.removed == 3
    assert ids(client) == added[3:]


def test_with_nothing_pending_the_last_delivered_entry_stays(each_redis_client, each_redis_transport):
    client = each_redis_client
    transport = each_redis_transport
    added = add(client, 5)
    client.xgroup_create(STREAM, "billing", id="0")
    client.xack(STREAM, "billing", *read(client, "billing", 3))
    result = Trimmer(transport, approximate=False).trim(STREAM)
    assert (result.point.min_id, result.point.holder.reason) == (added[2].decode(), "last-delivered")
    assert result.removed == 2
    assert ids(client) == added[2:]  # the last-delivered entry itself is kept


def test_a_group_that_read_nothing_holds_everything(each_redis_client, each_redis_transport):
    client = each_redis_client
    transport = each_redis_transport
    add(client, 5)
    client.xgroup_create(STREAM, "billing", id="0")
    client.xgroup_createconsumer(STREAM, "billing", "c1")
    result = Trimmer(transport, approximate=False).trim(STREAM)
    assert (result.point.min_id, result.removed) == ("0-0", 0)
    assert len(ids(client)) == 5


def test_a_stream_without_groups_is_not_trimmed(each_redis_client, each_redis_transport):
    client = each_redis_client
    transport = each_redis_transport
    add(client, 5)
    result = Trimmer(transport, approximate=False).trim(STREAM)
    assert (result.point.min_id, result.removed) == (None, 0)
    assert len(ids(client)) == 5


def test_a_stale_group_stops_holding_back_trimming_with_a_warning(each_redis_client, each_redis_transport, caplog):
    client = each_redis_client
    transport = each_redis_transport
    added = add(client, 6)
    client.xgroup_create(STREAM, "retired", id="0")
    read(client, "retired", 1, consumer="old")  # needs everything from the 1st on
    client.xgroup_create(STREAM, "billing", id="0")
    time.sleep(0.6)
    client.xack(STREAM, "billing", *read(client, "billing", 4))  # billing's consumer is active now
    trimmer = Trimmer(transport, group_ttl=0.5, approximate=False)
    with caplog.at_level(logging.WARNING, logger="lightbus_sync.trimming"):
        result = trimmer.trim(STREAM)
        trimmer.trim(STREAM)  # the same stale set: no second warning
    assert result.point.stale_groups == ("retired",)
    assert (result.point.held_by, result.removed, result.acked) == ("billing", 3, False)
    assert ids(client) == added[3:]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'retired'" in warnings[0] and "group_ttl" in warnings[0]


def test_a_group_without_consumers_counts_as_live(each_redis_client, each_redis_transport):
    client = each_redis_client
    transport = each_redis_transport
    add(client, 4)
    client.xgroup_create(STREAM, "billing", id="0")  # no consumer at all
    time.sleep(0.3)
    point = trim_point(transport, STREAM, group_ttl=0.1)
    assert (point.stale_groups, point.min_id) == ((), "0-0")


def test_acked_guards_the_trim_from_redis_8_2_on(each_redis, each_redis_client, each_redis_transport):
    server = each_redis
    client = each_redis_client
    transport = each_redis_transport
    add(client, 4)
    client.xgroup_create(STREAM, "billing", id="0")
    client.xack(STREAM, "billing", *read(client, "billing", 4))
    result = Trimmer(transport, approximate=False).trim(STREAM)
    assert result.acked is (server.version[:2] >= (8, 2))
    assert result.removed == 3


def test_the_default_trimmer_trims_acked_entries_on_every_server(each_redis, each_redis_client, each_redis_transport):
    """Approximate trims remove whole nodes; with ACKED (Redis 8.2) they are exact, since
    Redis 8.2 removes nothing for an approximate ACKED trim."""
    server = each_redis
    client = each_redis_client
    transport = each_redis_transport
    client.config_set("stream-node-max-entries", 10)
    try:
        added = add(client, 95)
        client.xgroup_create(STREAM, "billing", id="0")
        client.xack(STREAM, "billing", *read(client, "billing", 95))
        result = Trimmer(transport).trim(STREAM)
        if result.acked:
            assert result.removed == 94 and ids(client) == added[94:]
        else:
            assert 80 <= result.removed <= 94 and ids(client)[-1] == added[-1]
    finally:
        client.config_set("stream-node-max-entries", 100)


def test_xtrim_acked_keeps_entries_a_group_created_meanwhile_has_not_read(redis82_server):
    redis82_server.flushall()
    client = redis82_server.client()
    transport = RedisTransport(redis82_server.url)
    try:
        added = add(client, 5)
        client.xgroup_create(STREAM, "billing", id="0")
        client.xack(STREAM, "billing", *read(client, "billing", 5))
        point = trim_point(transport, STREAM)
        client.xgroup_create(STREAM, "late", id="0")  # between reading the groups and trimming
        assert transport.trim_stream(STREAM, point.min_id, acked=True, approximate=False) == 0
        assert ids(client) == added
    finally:
        transport.close()
        client.close()


def test_bad_settings_are_refused(each_redis_transport):
    transport = each_redis_transport
    with pytest.raises(ValueError, match="group_ttl must be > 0"):
        Trimmer(transport, group_ttl=0)
    with pytest.raises(ValueError, match="group_ttl must be > 0"):
        trim_point(transport, STREAM, group_ttl=-5)
