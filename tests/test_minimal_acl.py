"""The documented minimal ACL of each role works, with real ACL users: a producer fires
and publishes schemas, the operators' commands run (status, inspect, dead-letters list,
show, replay, purge); on real Redis 6.2, 7.x and 8.2."""

from __future__ import annotations

import json

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.access import OPS_ACL, PRODUCER_ACL
from ops_apps.ops_support import cli  # noqa: F401 (fixture)

STREAM = "aclshop.*:stream"
DEAD = "{aclshop.*:stream}:dead"


class AclShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int),))

    class Meta:
        name = "aclshop"


@pytest.fixture
def server(each_redis):
    return each_redis


def user_url(server, name: str, rules) -> str:
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">secret", *rules)
    return f"redis://{name}:secret@127.0.0.1:{server.port}/0"


def test_a_producer_with_the_producer_acl_fires(server):
    bus = lightbus_sync.create(redis_url=user_url(server, "producer", PRODUCER_ACL), service_name="shop")
    try:
        bus.register(AclShopApi)
        bus.aclshop.order_placed.fire(order_id=1)
        bus.aclshop.order_placed.fire_many([{"order_id": 2}, {"order_id": 3}])
        assert "aclshop" in bus.transport_for("aclshop").load_schemas()  # SMEMBERS + MGET
    finally:
        bus.close()
    with server.client() as admin:
        assert admin.xlen(STREAM) == 3
        assert admin.sismember("schemas", "aclshop")


def test_the_producer_acl_refuses_other_keys(server):
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "producer", "reset", "on", ">secret", *PRODUCER_ACL)
    url = f"redis://producer:secret@127.0.0.1:{server.port}/0"
    import redis

    with redis.Redis.from_url(url) as client:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("other", "x")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.xreadgroup("g", "c", {STREAM: ">"})


def test_the_operators_commands_with_the_ops_acl(server, cli):
    with server.client() as admin:
        entry_id = admin.xadd(STREAM, {"id": "e1", "api_name": "aclshop", "event_name": "order_placed",
                                       "version": "1", ":order_id": "7"})
        admin.xgroup_create(STREAM, "shop-billing", id="0")
        admin.xreadgroup("shop-billing", "p1", {STREAM: ">"}, count=1)
        dead_ids = [admin.xadd(DEAD, {
            "dl:original_id": entry_id, "dl:stream": STREAM, "dl:group": "shop-billing", "dl:listener": "billing",
            "dl:consumer": "p1", "dl:reason": "max deliveries reached", "dl:error": "boom",
            "dl:delivery_count": "3", "dl:time": "2026-01-01T00:00:00+00:00",
            "id": f"e{n}", "api_name": "aclshop", "event_name": "order_placed", "version": "1",
            ":order_id": str(n)}).decode() for n in (1, 2)]
    url = user_url(server, "ops", OPS_ACL)
    for args in (["status", "--api", "aclshop", "--check"], ["inspect", "aclshop"],
                 ["dead-letters", "list", "--api", "aclshop"], ["dead-letters", "show", dead_ids[0]],
                 ["dead-letters", "replay", dead_ids[0]], ["dead-letters", "purge", dead_ids[1]]):
        code, out, err = cli(*args, "--redis-url", url)
        assert code == 0, (args, out, err)
    with server.client() as admin:
        assert admin.xlen(DEAD) == 0
        assert admin.xlen("{aclshop.*:stream}:replay:shop-billing") == 1
    code, out, _ = cli("status", "--api", "aclshop", "--json", "--redis-url", url)
    assert json.loads(out)["streams"][0]["groups"][0]["pending"] == 1


def test_the_deployment_page_shows_these_very_rules():
    from pathlib import Path

    from lightbus_sync.access import RUNNER_ACL

    page = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    for name, rules in (("producer", PRODUCER_ACL), ("runner", RUNNER_ACL), ("ops", OPS_ACL)):
        assert f"ACL SETUSER {name} on >CHANGE-ME {' '.join(rules)}\n" in page, name
