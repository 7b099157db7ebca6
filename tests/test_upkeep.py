"""Stream upkeep (lightbus_sync.upkeep): a loss is reported once, per group, before the
stream is trimmed; on real Redis 6.2, 7.x and 8.2."""

from __future__ import annotations

import logging

import pytest

from lightbus_sync.trimming import Trimmer
from lightbus_sync.upkeep import StreamUpkeep

STREAM = "shop.*:stream"


def test_a_loss_is_reported_once_per_group_and_the_stream_trimmed(
    each_redis, each_redis_client, each_redis_transport, caplog
):
    server, client, transport = each_redis, each_redis_client, each_redis_transport
    added = [client.xadd(STREAM, {"n": str(i)}) for i in range(20)]
    for group in ("billing", "email", "other-service"):
        client.xgroup_create(STREAM, group, id="0")
    for group, count in (("billing", 18), ("email", 5), ("other-service", 2)):
        reply = client.xreadgroup(group, "c1", {STREAM: ">"}, count=count)
        client.xack(STREAM, group, *[i for i, _ in reply[0][1]])
    client.xtrim(STREAM, maxlen=5, approximate=False)  # a hard cap: the 1st..15th go
    lost = []
    upkeep = StreamUpkeep(transport, {STREAM: ["billing", "email"]}, trimmer=Trimmer(transport, approximate=False),
                          on_lost=lost.append, interval=60)
    with caplog.at_level(logging.ERROR, logger="lightbus_sync.runner"):
        found = upkeep.run()
        again = upkeep.run(force=True)
    assert found == lost and again == []
    assert [(loss.group, loss.exact) for loss in lost] == [("email", server.version[0] >= 7)]
    assert lost[0].lost == (10 if server.version[0] >= 7 else 1)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "consumer group 'email' lost" in errors[0]
    assert ("10 entries" if server.version[0] >= 7 else "at least 1 entry") in errors[0]
    # other-service (not this runner's) holds the trim point at its last-delivered id,
    # already gone: nothing more is trimmed
    assert [i for i, _ in client.xrange(STREAM)] == added[15:]


def test_an_observer_that_raises_is_logged_and_skipped(each_redis, each_redis_client, each_redis_transport, caplog):
    server, client, transport = each_redis, each_redis_client, each_redis_transport
    for i in range(6):
        client.xadd(STREAM, {"n": str(i)})
    client.xgroup_create(STREAM, "billing", id="0")
    client.xtrim(STREAM, maxlen=2, approximate=False)

    def broken(loss):
        raise RuntimeError("observer down")

    upkeep = StreamUpkeep(transport, {STREAM: ["billing"]}, trimmer=None, on_lost=broken, interval=60)
    with caplog.at_level(logging.ERROR, logger="lightbus_sync.runner"):
        found = upkeep.run()
    assert [loss.group for loss in found] == (["billing"] if server.version[0] >= 7 else [])
    if server.version[0] >= 7:
        assert any("reporting the loss of billing" in r.getMessage() for r in caplog.records)


def test_each_stream_is_checked_at_most_once_per_interval(each_redis_client, each_redis_transport):
    client = each_redis_client
    for stream in (STREAM, "other:stream"):
        for i in range(6):
            client.xadd(stream, {"n": str(i)})
        client.xgroup_create(stream, "billing", id="0")
    now = [100.0]
    lost = []
    upkeep = StreamUpkeep(each_redis_transport, {STREAM: ["billing"], "other:stream": ["billing"]}, trimmer=None,
                          on_lost=lost.append, interval=5.0, clock=lambda: now[0])
    client.xtrim(STREAM, maxlen=2, approximate=False)
    upkeep.run()
    reported = len(lost)
    client.xtrim("other:stream", maxlen=2, approximate=False)
    now[0] += 4.9
    assert upkeep.run() == []  # neither stream is due: the new gap is not read yet
    now[0] += 0.2
    upkeep.run()
    assert len(lost) == reported + (1 if each_redis_client.info("server")["redis_version"] >= "7" else 0)
    assert upkeep.run(force=True) == []  # forced: read again, nothing new
