"""A Redis over its maxmemory refuses writes with OOM: fire() raises RedisOutOfMemory at
once, naming OOM, and nothing is written."""

from __future__ import annotations

import time

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, RedisOutOfMemory, TransportError


class OomShopApi(Api):
    order_placed = Event(parameters=("order_id",))

    class Meta:
        name = "oom_shop"


@pytest.fixture
def full_redis(fresh_redis_server):
    bus = lightbus_sync.create(redis_url=fresh_redis_server.url, service_name="oom", process_name="p1",
                               config={"apis": {"default": {"event_fire_timeout": 30}}})
    bus.register(OomShopApi)
    bus.oom_shop.order_placed.fire(order_id=0)  # publishes the schema while there is room
    with fresh_redis_server.client() as admin:
        admin.config_set("maxmemory", 1)
        yield bus, admin
        admin.config_set("maxmemory", 0)
    bus.close()


def test_fire_raises_redis_out_of_memory_at_once(full_redis):
    bus, admin = full_redis
    started = time.monotonic()
    with pytest.raises(RedisOutOfMemory, match=r"out of memory \(OOM\) and refused XADD oom_shop\.\*:stream"):
        bus.oom_shop.order_placed.fire(order_id=1)
    assert time.monotonic() - started < 10  # not retried for event_fire_timeout (30 s)
    assert admin.xlen("oom_shop.*:stream") == 1
    assert issubclass(RedisOutOfMemory, TransportError)


def test_fire_many_raises_it_too(full_redis):
    bus, admin = full_redis
    with pytest.raises(RedisOutOfMemory, match="OOM"):
        bus.oom_shop.order_placed.fire_many([{"order_id": 2}, {"order_id": 3}])
    assert admin.xlen("oom_shop.*:stream") == 1
