"""Key builders and the dead-letter record, alone (lightbus_sync.keys, dead_letter_record)."""

from __future__ import annotations

import datetime

from redis.crc import key_slot

from lightbus_sync import keys
from lightbus_sync.dead_letter_record import (
    FIELD_PREFIX,
    MAX_ERROR_TEXT,
    METADATA_NAMES,
    encode_dead_letter,
    metadata_delivery_count,
    metadata_time,
    split_dead_letter,
)
from lightbus_sync.transport import RedisTransport

STREAM = "shop.*:stream"


def test_stream_keys_build_and_parse():
    assert keys.stream_key("shop", "order_placed", keys.STREAM_PER_API) == STREAM
    assert keys.stream_key("shop", "order_placed", keys.STREAM_PER_EVENT) == "shop.order_placed:stream"
    assert keys.parse_stream_key(STREAM) == ("shop", None)
    assert keys.parse_stream_key("my.shop.order_placed:stream") == ("my.shop", "order_placed")


def test_companions_of_a_stream_share_its_hash_slot_and_parse_back():
    companions = [
        keys.dead_letter_stream(STREAM), keys.replay_stream(STREAM, "shop-billing"), keys.attempts_key(STREAM),
        keys.attempts_key(keys.replay_stream(STREAM, "shop-billing")),
    ]
    assert {key_slot(k.encode()) for k in companions} == {key_slot(STREAM.encode())}
    assert keys.dead_letter_stream(STREAM) == "{shop.*:stream}:dead"
    assert keys.stream_of_dead("{shop.*:stream}:dead") == STREAM
    assert keys.stream_of_dead(STREAM) is None
    replay = keys.replay_stream(STREAM, "shop-billing")
    assert keys.parse_replay_stream(replay) == (STREAM, "shop-billing")
    assert keys.parse_replay_stream(keys.dead_letter_stream(STREAM)) is None
    assert keys.original_stream(replay) == STREAM and keys.original_stream(STREAM) == STREAM
    assert keys.is_replay_stream(replay) and not keys.is_replay_stream(STREAM)
    # A replayed entry's attempts are counted in its stream's hash, under its own field.
    assert keys.attempts_key(replay) == keys.attempts_key(STREAM) == "{shop.*:stream}:attempts"
    assert keys.attempts_field(STREAM, "g", b"1-0") == "g 1-0"
    assert keys.attempts_field(replay, "g", "1-0") == "g replay 1-0"


def test_schema_keys_are_the_ones_the_transport_writes(redis_url, redis_client):
    transport = RedisTransport(redis_url)
    try:
        transport.store_schemas({"shop": '{"events": {}}'}, ttl=60)
        assert redis_client.get(keys.schema_key("shop")) == b'{"events": {}}'
        assert redis_client.smembers(keys.SCHEMAS_SET) == {b"shop"}
        assert transport.load_schemas() == {"shop": '{"events": {}}'}
    finally:
        transport.close()


def test_dead_letter_record_round_trips_through_redis(redis_client):
    original = {b"id": b"e-1", b"dl:looks_like_metadata": b"kept", b":n": b"1"}
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    fields = encode_dead_letter(
        original_id=b"5-0", stream=STREAM, group="shop-billing", listener="billing", consumer="c1",
        delivery_count=3, reason="max deliveries reached", error_type="ValueError", error="x" * (MAX_ERROR_TEXT + 5),
        event_id="e-1", original_fields=original, now=moment,
    )
    dead = keys.dead_letter_stream(STREAM)
    redis_client.execute_command("XADD", dead, "*", *fields)
    [(_, stored)] = redis_client.xrange(dead)
    pairs = list(stored.items())  # stream order
    metadata, rest = split_dead_letter(pairs)
    assert list(metadata) == list(METADATA_NAMES)
    assert [n for n, _ in pairs[: len(METADATA_NAMES)]] == [(FIELD_PREFIX + n).encode() for n in METADATA_NAMES]
    assert rest == list(original.items())  # an original dl:* field survives, in order
    assert metadata["original_id"] == "5-0" and metadata["group"] == "shop-billing"
    assert metadata["error"] == "x" * MAX_ERROR_TEXT + "..."
    assert metadata_time(metadata) == moment and metadata_delivery_count(metadata) == 3
    assert metadata_time({"time": "yesterday"}) is None and metadata_delivery_count({}) is None
