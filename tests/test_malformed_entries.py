"""Entries that no decoder can take (nested too deeply for json, etc.): a MalformedEntry
naming the exception, and the operators' commands print them without crashing."""

from __future__ import annotations

import json

import pytest

from lightbus_sync.errors import MalformedEntry
from lightbus_sync.wire import decode_entry
from ops_apps.ops_support import cli  # noqa: F401 (fixture)

DEEP = "[" * 100_000 + "]" * 100_000
STREAM = "opsdeep.*:stream"
DEAD = "{opsdeep.*:stream}:dead"


def fields(value: str) -> dict[bytes, bytes]:
    return {b"id": b"e1", b"api_name": b"opsdeep", b"event_name": b"nested", b"version": b"1",
            b":value": value.encode()}


def test_json_nested_too_deeply_is_a_malformed_entry_naming_recursion_error():
    with pytest.raises(MalformedEntry, match=r"parameter 'value' cannot be decoded: RecursionError"):
        decode_entry(fields(DEEP))


def test_invalid_json_is_still_reported_as_such():
    with pytest.raises(MalformedEntry, match=r"parameter 'value' is not valid JSON"):
        decode_entry(fields("[1,"))


def test_inspect_and_dead_letters_show_print_such_an_entry(cli, redis_client, redis_url):
    entry_id = redis_client.xadd(STREAM, fields(DEEP))
    dead_id = redis_client.xadd(DEAD, {
        b"dl:original_id": entry_id, b"dl:stream": STREAM.encode(), b"dl:group": b"billing",
        b"dl:listener": b"on_nested", b"dl:consumer": b"c1", b"dl:reason": b"malformed",
        b"dl:error": b"declined", b"dl:delivery_count": b"1",
        b"dl:time": b"2026-01-01T00:00:00+00:00", **fields(DEEP)}).decode()

    code, out, err = cli("inspect", "opsdeep", "--redis-url", redis_url)
    assert code == 0, err
    assert "MALFORMED: parameter 'value' cannot be decoded: RecursionError" in out
    code, out, err = cli("inspect", "opsdeep", "--redis-url", redis_url, "--json")
    assert code == 0, err
    [event] = json.loads(out)
    assert event["malformed"].startswith("parameter 'value' cannot be decoded: RecursionError")
    assert event["fields"][":value"] == DEEP

    code, out, err = cli("dead-letters", "show", dead_id, "--redis-url", redis_url)
    assert code == 0, err
    assert "cannot be decoded: RecursionError" in out
    code, out, err = cli("dead-letters", "show", dead_id, "--redis-url", redis_url, "--json")
    assert code == 0, err
    assert json.loads(out)["fields"][":value"] == DEEP
