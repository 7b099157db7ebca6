"""``lightbus-sync status``: what holds each stream's trim point, the entries each group
lost, and ``status --check`` failing on a loss; on real Redis 6.2, 7.x and 8.2."""

from __future__ import annotations

import json
import time

import pytest

from lightbus_sync.ops.status import check_status, collect_status, render_status, stream_status
from lightbus_sync.ops.streams import StreamTarget
from ops_apps.ops_support import cli  # noqa: F401 (fixture)

STREAM = "trimst.*:stream"


def test_a_hard_cap_loss_shows_per_group_and_fails_the_check(each_redis, each_redis_client, each_redis_transport, cli):
    server, client, transport = each_redis, each_redis_client, each_redis_transport
    [client.xadd(STREAM, {"n": str(i)}) for i in range(20)]
    for group, count in (("billing", 18), ("email", 5)):
        client.xgroup_create(STREAM, group, id="0")
        reply = client.xreadgroup(group, "c1", {STREAM: ">"}, count=count)
        client.xack(STREAM, group, *[i for i, _ in reply[0][1]])
    client.xtrim(STREAM, maxlen=5, approximate=False)
    status = collect_status(transport, ["trimst"])
    groups = {g.name: g for g in status.streams[0].groups}
    exact = server.version[0] >= 7
    assert (groups["email"].lost, groups["email"].lost_exact) == ((10, True) if exact else (1, False))
    assert groups["billing"].lost == 0
    rendered = render_status(status)
    email_row = next(line.split() for line in rendered.splitlines() if line.split()[1:2] == ["email"])
    assert email_row[7] == ("10" if exact else ">=1")  # the LOST column
    problems = check_status(status)
    assert [(p.kind, p.group) for p in problems] == [("lost", "email")]
    assert ("lost 10 entries" if exact else "lost at least 1 entry") in problems[0].message

    code, out, err = cli("status", "--redis-url", server.url, "--api", "trimst", "--check")
    assert code == 1, err
    assert "check: FAILED" in out and "group email: lost" in out
    code, out, _ = cli("status", "--redis-url", server.url, "--api", "trimst", "--json")
    data = json.loads(out)["streams"][0]
    assert {g["name"]: g["lost"] for g in data["groups"]}["email"] == (10 if exact else 1)
    assert data["trim_held_by"] == "email"


def test_a_stale_group_is_shown_and_does_not_hold_the_trim_point(each_redis, each_redis_client, each_redis_transport):
    server, client, transport = each_redis, each_redis_client, each_redis_transport
    ids = [client.xadd(STREAM, {"n": str(i)}) for i in range(6)]
    client.xgroup_create(STREAM, "retired", id="0")
    client.xreadgroup("retired", "old", {STREAM: ">"}, count=1)
    client.xgroup_create(STREAM, "billing", id="0")
    time.sleep(0.6)
    reply = client.xreadgroup("billing", "c1", {STREAM: ">"}, count=3)
    client.xack(STREAM, "billing", *[i for i, _ in reply[0][1]])
    status = stream_status(StreamTarget(STREAM, "trimst", None, transport), group_ttl=0.5)
    assert (status.trim_held_by, status.trim_reason, status.trim_point) == ("billing", "last-delivered",
                                                                           ids[2].decode())
    assert status.stale_groups == ["retired"]
