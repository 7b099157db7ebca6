"""Loss detection (lightbus_sync.loss) on real Redis 6.2, 7.x and 8.2 servers."""

from __future__ import annotations

import pytest

from lightbus_sync.loss import GroupLoss, LossTracker, detect_loss
from lightbus_sync.trimming import Trimmer

STREAM = "shop.*:stream"


def exact_counts(server) -> bool:
    return server.version[0] >= 7


def add(client, n: int) -> list[bytes]:
    return [client.xadd(STREAM, {"n": str(i)}) for i in range(n)]


def read_ack(client, group: str, count: int) -> None:
    reply = client.xreadgroup(group, "c1", {STREAM: ">"}, count=count)
    client.xack(STREAM, group, *[entry_id for entry_id, _ in reply[0][1]])


def test_no_loss_while_trimming_waits_for_every_group(each_redis_client, each_redis_transport):
    client = each_redis_client
    transport = each_redis_transport
    add(client, 20)
    for group in ("billing", "email"):
        client.xgroup_create(STREAM, group, id="0")
    read_ack(client, "billing", 15)
    read_ack(client, "email", 5)
    Trimmer(transport, approximate=False).trim(STREAM)
    losses = detect_loss(transport, STREAM)
    assert {g: (loss.lost, loss.exact) for g, loss in losses.items()} == {
        "billing": (0, True), "email": (0, True)}


def test_a_hard_cap_that_overtakes_a_group_is_counted_per_group(each_redis, each_redis_client, each_redis_transport):
    server = each_redis
    client = each_redis_client
    transport = each_redis_transport
    add(client, 20)
    for group in ("billing", "email"):
        client.xgroup_create(STREAM, group, id="0")
    read_ack(client, "billing", 18)
    read_ack(client, "email", 5)
    client.xtrim(STREAM, maxlen=5, approximate=False)  # removes the 1st..15th
    losses = detect_loss(transport, STREAM)
    assert losses["billing"].lost == 0
    if exact_counts(server):
        assert (losses["email"].lost, losses["email"].exact) == (10, True)  # the 6th..15th
    else:
        assert (losses["email"].lost, losses["email"].exact) == (1, False)  # at least one
    assert detect_loss(transport, STREAM, "email") == {"email": losses["email"]}


def test_a_group_that_read_nothing(each_redis, each_redis_client, each_redis_transport):
    server = each_redis
    client = each_redis_client
    transport = each_redis_transport
    client.xgroup_create(STREAM, "billing", id="0", mkstream=True)
    add(client, 8)
    client.xtrim(STREAM, maxlen=3, approximate=False)
    loss = detect_loss(transport, STREAM)["billing"]
    if exact_counts(server):
        assert (loss.lost, loss.exact) == (5, True)
    else:
        assert (loss.lost, loss.exact) == (0, False)  # Redis 6.2 cannot tell


def test_everything_trimmed(each_redis, each_redis_client, each_redis_transport):
    server = each_redis
    client = each_redis_client
    transport = each_redis_transport
    add(client, 6)
    client.xgroup_create(STREAM, "billing", id="0")
    read_ack(client, "billing", 2)
    client.xtrim(STREAM, maxlen=0, approximate=False)
    loss = detect_loss(transport, STREAM)["billing"]
    assert loss.first_id is None
    if exact_counts(server):
        assert (loss.lost, loss.exact) == (4, True)
    else:
        assert (loss.lost, loss.exact) == (1, False)


def test_an_xdel_in_the_stream_makes_the_count_a_lower_bound(each_redis_client, each_redis_transport):
    client = each_redis_client
    transport = each_redis_transport
    added = add(client, 10)
    client.xgroup_create(STREAM, "billing", id="0")
    read_ack(client, "billing", 2)
    client.xdel(STREAM, added[8])
    client.xtrim(STREAM, maxlen=3, approximate=False)
    loss = detect_loss(transport, STREAM)["billing"]
    assert (loss.lost, loss.exact) == (1, False)


def test_a_missing_stream_has_no_groups(each_redis_transport):
    transport = each_redis_transport
    assert detect_loss(transport, "nothing:stream") == {}


def test_the_tracker_reports_each_loss_once():
    tracker = LossTracker()
    first = GroupLoss(STREAM, "email", 10, True, "5-0", "16-0")
    assert tracker.new_losses([first]) == [first]
    assert tracker.new_losses([first]) == []  # the same gap, read again
    grown = GroupLoss(STREAM, "email", 14, True, "5-0", "20-0")
    assert [loss.lost for loss in tracker.new_losses([grown])] == [4]
    moved = GroupLoss(STREAM, "email", 3, True, "30-0", "34-0")  # read past, then a new gap
    assert [loss.lost for loss in tracker.new_losses([moved])] == [3]
    assert tracker.new_losses([GroupLoss(STREAM, "email", 0, True, "40-0", "35-0")]) == []
