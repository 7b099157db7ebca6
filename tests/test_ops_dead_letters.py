"""lightbus_sync.ops.dead_letters and ``lightbus-sync dead-letters``, on a real Redis,
with dead letters made by a real runner (handlers raising) or by transport.dead_letter:
the records, filters, show, replay to the original group only (atomic, idempotent)
and purge."""

from __future__ import annotations

import datetime
import json

import pytest
import redis as redis_lib

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.errors import ScriptRefused
from lightbus_sync.ops import dead_letters as dl
from lightbus_sync.ops.dead_letters import (
    AmbiguousDeadLetter,
    DeadLetterNotFound,
    get_dead_letter,
    list_dead_letters,
    purge,
    replay,
    replay_stream,
)
from lightbus_sync.runner import Runner
from lightbus_sync.keys import parse_replay_stream
from lightbus_sync.transport import RedisTransport
from ops_apps.ops_support import cli, fast_config, ops_bus, wait_until  # noqa: F401 (fixtures)


class OpsDlShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("customer", str)))
    order_cancelled = Event(parameters=(Parameter("order_id", int),))

    class Meta:
        name = "opsdl.shop"


class OpsDlMailApi(Api):
    mail_sent = Event(parameters=(Parameter("to", str),))

    class Meta:
        name = "opsdl.mail"


SHOP = "opsdl.shop.*:stream"
SHOP_DEAD = "{opsdl.shop.*:stream}:dead"
MAIL = "opsdl.mail.*:stream"


class PaymentDeclined(Exception):
    pass


def _make_dead_letters(bus: lightbus_sync.Bus, redis_client: redis_lib.Redis) -> None:
    """A real runner: listener 'billing' dead-letters orders 3 and 6 (DeadLetter) and
    order 5 (PaymentDeclined, via dead_letter_on); listener 'audit' dead-letters
    cancellations (ValueError after max_deliveries=1); 'mailer' dead-letters mails."""

    def bill(order_id: int, customer: str) -> None:
        if order_id in (3, 6):
            raise lightbus_sync.DeadLetter(f"order {order_id} cannot be billed")
        if order_id == 5:
            raise PaymentDeclined(f"card of {customer} declined")

    def audit(order_id: int) -> None:
        raise ValueError(f"audit of {order_id} failed")

    def mail(to: str) -> None:
        raise lightbus_sync.DeadLetter(f"bounced: {to}")

    bus.opsdl.shop.order_placed.listen(bill, listener_name="billing", since="0", dead_letter_on=(PaymentDeclined,))
    bus.opsdl.shop.order_cancelled.listen(audit, listener_name="audit", since="0", max_deliveries=1)
    bus.opsdl.mail.mail_sent.listen(mail, listener_name="mailer", since="0")
    for i in range(1, 8):
        bus.opsdl.shop.order_placed.fire(order_id=i, customer=f"c{i}")
    bus.opsdl.shop.order_cancelled.fire(order_id=4)
    bus.opsdl.mail.mail_sent.fire(to="x@example.com")
    with Runner(bus, threads=2) as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: redis_client.xlen(SHOP_DEAD) == 4 and redis_client.xlen("{" + MAIL + "}:dead") == 1,
                   what="5 dead letters")
        wait_until(lambda: all(g["pending"] == 0 for g in redis_client.xinfo_groups(SHOP)), what="all acked")


@pytest.fixture
def dead_bus(ops_bus, redis_client):
    bus = ops_bus(service_name="shop")
    _make_dead_letters(bus, redis_client)
    return bus


def test_list_gives_records_with_metadata_and_the_original_fields(dead_bus, redis_client):
    letters = list_dead_letters(dead_bus, api="opsdl.shop")
    assert len(letters) == 4
    assert [l.dead_id for l in letters] == sorted((l.dead_id for l in letters), key=lambda i: tuple(map(int, i.split("-"))), reverse=True)
    by_order = {json.loads(l.fields[":order_id"]): l for l in letters}
    assert set(by_order) == {3, 4, 5, 6}
    three = by_order[3]
    original = redis_client.xrange(SHOP, three.original_id, three.original_id)
    assert original, "original_id names the entry of the original stream"
    assert three.fields == {k.decode(): v.decode() for k, v in original[0][1].items()}
    assert three.stream == SHOP and three.dead_stream == SHOP_DEAD
    assert three.group == "shop-billing" and three.listener == "billing" and three.consumer == "p1"
    assert three.delivery_count == 1
    assert three.reason == "handler marked permanent"
    assert three.error_type == "DeadLetter" and three.error == "order 3 cannot be billed"
    assert three.event_id == three.fields["id"]
    assert isinstance(three.time, datetime.datetime) and three.time.tzinfo is not None
    assert three.api_name == "opsdl.shop" and three.event_name == "order_placed"
    event = three.event()
    assert event.parameters == {"order_id": 3, "customer": "c3"}
    # the raw fields are the original ones verbatim, in order, without dl:*
    raw_dead = redis_client.xrange(SHOP_DEAD, three.dead_id, three.dead_id)[0][1]
    assert [k for k in raw_dead if k.startswith(b"dl:")] == [b"dl:" + n.encode() for n in dl.METADATA_NAMES]
    assert [k for k, _ in three.raw_fields] == list(original[0][1])
    five = by_order[5]
    assert five.error_type == "PaymentDeclined" and five.error == "card of c5 declined"
    four = by_order[4]
    assert four.group == "shop-audit" and four.error_type == "ValueError"
    assert four.reason == "max deliveries reached" and four.delivery_count == 1
    as_dict = three.as_dict()
    assert as_dict["parameters"] == {"order_id": 3, "customer": "c3"}
    json.dumps(as_dict)


def test_filters_and_limit(dead_bus, redis_client):
    everything = list_dead_letters(dead_bus)  # every {*}:dead stream on the server
    assert len(everything) == 5
    assert {l.stream for l in everything} == {SHOP, MAIL}
    assert len(list_dead_letters(dead_bus, api="opsdl.mail")) == 1
    assert {l.listener for l in list_dead_letters(dead_bus, listener="billing")} == {"billing"}
    assert len(list_dead_letters(dead_bus, listener="billing")) == 3
    assert len(list_dead_letters(dead_bus, group="shop-audit")) == 1
    assert len(list_dead_letters(dead_bus, event="order_cancelled")) == 1
    assert len(list_dead_letters(dead_bus, api="opsdl.shop", event="order_placed")) == 3
    declined = list_dead_letters(dead_bus, error_type="PaymentDeclined")
    assert [json.loads(l.fields[":order_id"]) for l in declined] == [5]
    assert list_dead_letters(dead_bus, error_type="KeyError") == []
    limited = list_dead_letters(dead_bus, limit=2)
    assert limited == everything[:2]
    # a bare transport and a stream key (or its dead-letter key) work too
    transport = dead_bus.transport_for("opsdl.shop")
    assert len(list_dead_letters(transport, SHOP)) == 4
    assert len(list_dead_letters(transport, SHOP_DEAD, listener="audit")) == 1
    assert len(list_dead_letters(transport, api="opsdl.shop", error_type="DeadLetter")) == 2


def test_show_by_id_and_unknown_or_ambiguous_ids(dead_bus, redis_client):
    newest = list_dead_letters(dead_bus, api="opsdl.shop", limit=1)[0]
    # ids are per dead-letter stream: two streams can hold the same id, so name the API
    assert get_dead_letter(dead_bus, newest.dead_id, api="opsdl.shop") == newest
    with pytest.raises(DeadLetterNotFound):
        get_dead_letter(dead_bus, "1-1")
    with pytest.raises(DeadLetterNotFound):
        get_dead_letter(dead_bus, "not-an-id")
    # the same id in two dead-letter streams: ambiguous unless the API is named
    other_dead = "{opsdl.other.*:stream}:dead"
    redis_client.xadd(other_dead, {"dl:stream": "opsdl.other.*:stream", "dl:group": "g", "id": "x"}, id=newest.dead_id)
    with pytest.raises(AmbiguousDeadLetter):
        get_dead_letter(dead_bus, newest.dead_id)
    assert get_dead_letter(dead_bus, newest.dead_id, api="opsdl.other").fields == {"id": "x"}
    assert get_dead_letter(dead_bus, newest.dead_id, SHOP) == newest
    assert get_dead_letter(dead_bus, newest.dead_id, filters=dl.Filters(group=newest.group)) == newest
    # replay/purge by id narrow with the filters the same way
    assert purge(dead_bus, [newest.dead_id], group="g") == 1
    assert redis_client.xlen(other_dead) == 0 and get_dead_letter(dead_bus, newest.dead_id, SHOP) == newest


def test_hand_made_dead_letter_keeps_original_fields_named_like_metadata(redis_client, redis_url):
    """A dead-letter entry written by hand (raw XADD, duplicate field names allowed): the
    leading dl:* run is metadata, a later dl:* field is an original field, kept verbatim."""
    transport = RedisTransport(redis_url)
    try:
        fields = ["dl:stream", "hand.*:stream", "dl:group", "g1", "dl:reason", "malformed",
                  "dl:original_id", "1-0", "dl:reason", "mine", "weird", "1"]
        redis_client.execute_command("XADD", "{hand.*:stream}:dead", "*", *fields)
        [letter] = list_dead_letters(transport, "hand.*:stream")
        assert letter.reason == "malformed" and letter.group == "g1" and letter.original_id == "1-0"
        assert letter.raw_fields == [(b"dl:reason", b"mine"), (b"weird", b"1")]
        assert letter.event().malformed  # not a Lightbus event: shown as malformed
        result = replay(transport, [letter.dead_id])
        assert len(result.replayed) == 1
        [(_, replayed)] = redis_client.xrange(replay_stream("hand.*:stream", "g1"))
        assert list(replayed.items()) == [(b"dl:reason", b"mine"), (b"weird", b"1")]
    finally:
        transport.close()


def test_replay_goes_to_the_original_group_only_and_removes_the_dead_letter(dead_bus, redis_client):
    [letter] = list_dead_letters(dead_bus, error_type="PaymentDeclined")
    length_before = redis_client.xlen(SHOP)
    other_groups = {g["name"]: g["last-delivered-id"] for g in redis_client.xinfo_groups(SHOP)}
    result = replay(dead_bus, [letter.dead_id], api="opsdl.shop")
    assert result.missing == [] and result.skipped == []
    [done] = result.replayed
    target = "{opsdl.shop.*:stream}:replay:shop-billing"
    assert done.replay_stream == target == replay_stream(SHOP, "shop-billing")
    assert done.group == "shop-billing" and done.dead_id == letter.dead_id
    # the original fields, verbatim and in order; none of the dl:* ones
    [(new_id, fields)] = redis_client.xrange(target)
    assert new_id.decode() == done.new_id
    assert [(k, v) for k, v in fields.items()] == letter.raw_fields
    assert not any(k.startswith(b"dl:") for k in fields)
    # gone from the dead-letter stream
    assert redis_client.xrange(SHOP_DEAD, letter.dead_id, letter.dead_id) == []
    assert len(list_dead_letters(dead_bus, api="opsdl.shop")) == 3
    # the original stream and its other groups see nothing new
    assert redis_client.xlen(SHOP) == length_before
    assert {g["name"]: g["last-delivered-id"] for g in redis_client.xinfo_groups(SHOP)} == other_groups
    assert redis_client.xreadgroup("shop-audit", "x", {SHOP: ">"}) == []
    # only the original group exists on the replay stream, at 0: it gets the entry
    assert [g["name"] for g in redis_client.xinfo_groups(target)] == [b"shop-billing"]
    [(_, entries)] = redis_client.xreadgroup("shop-billing", "p1", {target: ">"})
    assert entries == [(new_id, fields)]


def test_replay_is_idempotent(dead_bus, redis_client):
    letter = list_dead_letters(dead_bus, listener="billing", limit=1)[0]
    first = replay(dead_bus, [letter.dead_id], api="opsdl.shop")
    assert len(first.replayed) == 1
    second = replay(dead_bus, [letter.dead_id], api="opsdl.shop")
    assert second.replayed == [] and second.missing == [letter.dead_id]
    # a stale record (read before the first replay) does not replay twice either
    third = replay(dead_bus, [letter])
    assert third.replayed == [] and third.missing == [letter.dead_id]
    assert redis_client.xlen(replay_stream(SHOP, "shop-billing")) == 1


def test_replay_that_fails_in_the_script_removes_nothing(dead_bus, redis_client):
    letters = list_dead_letters(dead_bus, listener="billing")
    target = replay_stream(SHOP, "shop-billing")
    redis_client.set(target, "not a stream")  # XGROUP CREATE / XADD fail with WRONGTYPE
    with pytest.raises(ScriptRefused, match="nothing changed: XGROUP CREATE refused: WRONGTYPE"):
        replay(dead_bus, [letters[0].dead_id], api="opsdl.shop")
    assert redis_client.xlen(SHOP_DEAD) == 4
    assert redis_client.get(target) == b"not a stream"
    redis_client.delete(target)
    assert len(replay(dead_bus, [letters[0].dead_id], api="opsdl.shop").replayed) == 1
    assert redis_client.xlen(SHOP_DEAD) == 3


def test_replay_script_refuses_a_dead_letter_without_fields_and_keeps_it(dead_bus, redis_client):
    transport = dead_bus.transport_for("opsdl.shop")
    letter = list_dead_letters(dead_bus, listener="billing", limit=1)[0]
    with pytest.raises(ScriptRefused, match="no original fields"):
        transport.replay_dead_letter(SHOP_DEAD, replay_stream(SHOP, "shop-billing"), letter.dead_id, "shop-billing", [])
    with pytest.raises(ScriptRefused, match="nothing changed"):  # an odd field list: XADD fails
        transport.replay_dead_letter(SHOP_DEAD, replay_stream(SHOP, "shop-billing"), letter.dead_id, "shop-billing",
                                     ["a", "1", "b"])
    assert redis_client.xrange(SHOP_DEAD, letter.dead_id, letter.dead_id)
    # the record-level API skips such entries instead of failing
    redis_client.xadd("{opsdl.empty.*:stream}:dead", {"dl:stream": "opsdl.empty.*:stream", "dl:group": "g"}, id="2-0")
    result = replay(dead_bus, ["2-0"])
    assert result.replayed == [] and [i for i, _ in result.skipped] == ["2-0"]
    assert redis_client.xlen("{opsdl.empty.*:stream}:dead") == 1


def test_replay_all_with_filters_in_dead_letter_order(dead_bus, redis_client):
    letters = list_dead_letters(dead_bus, listener="billing")
    result = replay(dead_bus, all=True, listener="billing")
    assert len(result.replayed) == 3
    ids = [r.dead_id for r in result.replayed]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert ids == [l.dead_id for l in reversed(letters)]  # oldest dead letter first
    replayed = redis_client.xrange(replay_stream(SHOP, "shop-billing"))
    assert [f[b"id"].decode() for _, f in replayed] == [l.event_id for l in reversed(letters)]
    assert len(list_dead_letters(dead_bus)) == 2
    with pytest.raises(ValueError):
        replay(dead_bus)


def test_purge_selected_and_all(dead_bus, redis_client):
    letters = list_dead_letters(dead_bus, api="opsdl.shop")
    assert purge(dead_bus, [letters[0].dead_id, letters[1].dead_id], api="opsdl.shop") == 2
    assert purge(dead_bus, [letters[0].dead_id], api="opsdl.shop") == 0  # already gone
    assert redis_client.xlen(SHOP_DEAD) == 2
    value_errors = len(list_dead_letters(dead_bus, error_type="ValueError"))
    assert purge(dead_bus, all=True, error_type="ValueError") == value_errors
    assert list_dead_letters(dead_bus, error_type="ValueError") == []
    remaining = len(list_dead_letters(dead_bus))
    assert remaining == 3 - value_errors
    assert purge(dead_bus, all=True) == remaining
    assert list_dead_letters(dead_bus) == []
    assert purge(dead_bus, all=True) == 0
    with pytest.raises(ValueError):
        purge(dead_bus)


def test_replay_and_dead_letter_streams_share_the_stream_cluster_slot():
    from redis.crc import key_slot

    from lightbus_sync.runner import dead_letter_stream

    keys = [SHOP, SHOP_DEAD, dead_letter_stream(SHOP), replay_stream(SHOP, "shop-billing")]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert parse_replay_stream(replay_stream(SHOP, "shop-billing")) == (SHOP, "shop-billing")
    assert parse_replay_stream(SHOP_DEAD) is None


def test_ops_code_sends_redis_commands_only_through_the_transport():
    """Every Redis command lives in lightbus_sync/transport.py: the ops modules only
    call transport methods (no redis client of their own)."""
    import pathlib
    import re

    import lightbus_sync.ops

    files = list(pathlib.Path(lightbus_sync.ops.__file__).parent.glob("*.py"))
    files.append(pathlib.Path(lightbus_sync.ops.__file__).parent.parent / "cli_ops.py")
    for path in files:
        source = path.read_text()
        assert not re.search(r"\.client\b|redis\.Redis\(|execute_command|\.xadd\(|\.xrange\(|\.xdel\(", source), path


# --- CLI -------------------------------------------------------------------------------


def test_cli_list_show_json_and_filters(dead_bus, redis_url, cli):
    code, out, err = cli("dead-letters", "list", "--redis-url", redis_url, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert len(listed) == 5
    assert {d["group"] for d in listed} == {"shop-billing", "shop-audit", "shop-mailer"}
    code, out, _ = cli("dead-letters", "list", "--redis-url", redis_url, "--json", "--error-type", "PaymentDeclined")
    [declined] = json.loads(out)
    assert declined["parameters"] == {"order_id": 5, "customer": "c5"}
    assert declined["fields"][":customer"] == '"c5"'
    code, out, _ = cli("dead-letters", "list", "--redis-url", redis_url, "--api", "opsdl.shop", "--listener", "audit")
    assert code == 0 and "shop-audit" in out and "ValueError: audit of 4 failed" in out and "shop-billing" not in out
    assert out.splitlines()[0].split()[:3] == ["DEAD", "ID", "DEAD-LETTERED"]
    code, out, _ = cli("dead-letters", "list", "--redis-url", redis_url, "--limit", "1", "--json")
    assert len(json.loads(out)) == 1
    code, out, _ = cli("dead-letters", "show", declined["dead_id"], "--api", "opsdl.shop", "--redis-url", redis_url,
                       "--json")
    assert code == 0 and json.loads(out) == declined
    code, out, _ = cli("dead-letters", "show", declined["dead_id"], "--api", "opsdl.shop", "--redis-url", redis_url)
    assert "PaymentDeclined: card of c5 declined" in out and 'customer = "c5"' in out
    code, _, err = cli("dead-letters", "show", "9-9", "--redis-url", redis_url)
    assert code == 2 and "no dead letter 9-9" in err


def test_cli_replay_and_purge(dead_bus, redis_url, redis_client, cli):
    letters = list_dead_letters(dead_bus, listener="billing")
    code, out, err = cli("dead-letters", "replay", letters[0].dead_id, "--api", "opsdl.shop", "--redis-url", redis_url)
    assert code == 0, err
    assert f"replayed {letters[0].dead_id} -> {{{SHOP}}}:replay:shop-billing" in out
    code, out, _ = cli("dead-letters", "replay", letters[0].dead_id, "--api", "opsdl.shop", "--redis-url", redis_url)
    assert code == 1 and "not found" in out
    assert redis_client.xlen(replay_stream(SHOP, "shop-billing")) == 1
    code, out, _ = cli("dead-letters", "replay", "--all", "--listener", "billing", "--redis-url", redis_url, "--json")
    assert code == 0 and len(json.loads(out)["replayed"]) == 2
    code, _, err = cli("dead-letters", "replay", "--redis-url", redis_url)
    assert code == 2 and "--all" in err
    code, _, err = cli("dead-letters", "purge", "--redis-url", redis_url)
    assert code == 2
    mail = list_dead_letters(dead_bus, api="opsdl.mail")[0]
    code, out, _ = cli("dead-letters", "purge", mail.dead_id, "--stream", MAIL, "--redis-url", redis_url)
    assert code == 0 and "1 dead letter(s) purged" in out
    code, out, _ = cli("dead-letters", "purge", mail.dead_id, "--stream", MAIL, "--redis-url", redis_url)
    assert code == 1 and "0 dead letter(s) purged" in out
    code, out, _ = cli("dead-letters", "purge", "--all", "--redis-url", redis_url)
    assert code == 0 and "1 dead letter(s) purged" in out
    assert list_dead_letters(dead_bus) == []
