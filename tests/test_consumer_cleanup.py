"""Consumers are deleted only when that cannot strand entries: never one holding pending
entries (they could never be claimed again), never a group's last one (Lightbus 1.x
workers destroy groups that have no consumers)."""

import pytest

from lightbus_sync.transport import RedisTransport

STREAM, GROUP = "cleanup.*:stream", "svc-listener"


@pytest.fixture
def transport(redis_url, redis_client):
    redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    t = RedisTransport(redis_url)
    yield t
    t.close()


def _consumers(redis_client):
    return {c["name"].decode(): c["pending"] for c in redis_client.xinfo_consumers(STREAM, GROUP)}


def test_a_consumer_holding_pending_entries_is_kept(transport, redis_client):
    redis_client.xadd(STREAM, {"a": "1"})
    redis_client.xreadgroup(GROUP, "busy", {STREAM: ">"})  # busy now holds one pending entry
    redis_client.xgroup_createconsumer(STREAM, GROUP, "idle")
    assert transport.delete_consumer_if_idle(STREAM, GROUP, "busy") is False
    assert _consumers(redis_client) == {"busy": 1, "idle": 0}


def test_an_idle_consumer_is_deleted_but_never_the_last_one(transport, redis_client):
    redis_client.xgroup_createconsumer(STREAM, GROUP, "first")
    redis_client.xgroup_createconsumer(STREAM, GROUP, "second")
    assert transport.delete_consumer_if_idle(STREAM, GROUP, "first") is True
    assert _consumers(redis_client) == {"second": 0}
    assert transport.delete_consumer_if_idle(STREAM, GROUP, "second") is False
    assert _consumers(redis_client) == {"second": 0}


def test_a_new_group_gets_its_consumer_at_once(transport, redis_client):
    """Even before anything is read (Redis 6.2 creates no consumer on an empty read)."""
    transport.ensure_group("fresh.*:stream", "svc-new", "$", "worker-1")
    assert [c["name"] for c in redis_client.xinfo_consumers("fresh.*:stream", "svc-new")] == [b"worker-1"]
