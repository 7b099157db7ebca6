"""The planned path of fire()'s check and encoding (lightbus_sync.outgoing) gives what
the general path gives, for every call: the same values, the same fields byte for byte,
the same error for a bad call."""

from __future__ import annotations

import enum
import os
import math
import uuid
from typing import Any, Literal, Optional, Union

import pytest

from lightbus_sync import Api, Event, Parameter
from lightbus_sync.errors import InvalidFireCall, InvalidParameterValue, SchemaMismatch
from lightbus_sync.outgoing import OutgoingEvent
from lightbus_sync.wire import new_event_ids
from lightbus_sync.wire import entry_size

EVENT_ID = "0b6a3c1e-8d6f-4c1b-9f59-8f1e0c3d2a10"


class Colour(enum.Enum):
    RED = "red"


class Text(str):
    pass


class OutgoingApi(Api):
    mixed = Event(parameters=(
        Parameter("name", str),
        Parameter("count", int, default=0),
        Parameter("ratio", float, default=1.5),
        Parameter("flag", bool, default=False),
        Parameter("note", str, default=None),  # Optional[str]
        Parameter("anything"),
        Parameter("either", Union[int, str], default="x"),
        Parameter("tags", list[int], default=[]),
    ))
    plain = Event(parameters=(
        Parameter("name", str),
        Parameter("count", int, default=0),
        Parameter("ratio", float, default=1.5),
        Parameter("flag", bool, default=False),
        Parameter("note", str, default=None),
        Parameter("anything"),
        Parameter("either", Union[int, str], default="x"),
    ))
    literal = Event(parameters=(Parameter("choice", Literal["", "x"]),))
    colour = Event(parameters=(Parameter("colour", Colour),))
    optional_int = Event(parameters=(Parameter("value", Optional[int]),))

    class Meta:
        name = "outgoing"
        version = 3


def _outgoing(event: str, validator=None, max_entry_size: int = 1_048_576) -> OutgoingEvent:
    return OutgoingEvent(OutgoingApi.definition.event(event), validator is not None, lambda: validator,
                         max_entry_size)


def _both(outgoing: OutgoingEvent, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """(what encode() gives, what the general path gives): a result or (error class, message)."""
    results = []
    for encode in (lambda: outgoing.encode(args, kwargs, EVENT_ID),
                   lambda: outgoing._encode_general(args, dict(kwargs), EVENT_ID, outgoing._validator())):
        try:
            results.append(encode())
        except Exception as exc:
            results.append((type(exc), str(exc)))
    return results[0], results[1]


CALLS = [
    {"name": "adam", "anything": 1},
    {"anything": None, "name": "zoë ☃ \"quoted\" \\ \n"},
    {"name": "a", "count": -7, "ratio": 2, "flag": True, "note": "n", "anything": "s", "either": 5, "tags": [1]},
    {"name": "a", "count": 2**70, "ratio": -0.0, "anything": 1.25, "either": "y"},
    {"name": "a", "anything": {"b": [1, None], "a": True}},
    {"name": "a", "anything": (1, 2)},
    {"name": Text("sub"), "anything": 1},
    {"name": "a", "count": True, "anything": 1},
    {"name": "a", "ratio": math.nan, "anything": 1},
    {"name": "a", "ratio": math.inf, "anything": 1},
    {"name": "a", "anything": math.nan},
    {"name": "a", "count": 10**5000, "anything": 1},
    {"name": "a", "flag": 1, "anything": 1},
    {"name": 1, "anything": 1},
    {"name": "a"},
    {"anything": 1},
    {"name": "a", "anything": 1, "nmae": 2},
    {"name": "a", "anything": object()},
    {"name": "a", "note": None, "anything": uuid.UUID(int=1)},
    {},
]


def test_positional_arguments_take_the_general_path():
    planned, general = _both(_outgoing("mixed"), ("adam",), {"anything": 1})
    assert planned == general and "keyword arguments only" in planned[1]


@pytest.mark.parametrize("event, kwargs", [
    ("literal", {"choice": "x"}), ("literal", {"choice": "y"}), ("literal", {"choice": ""}),
    ("colour", {"colour": Colour.RED}), ("colour", {"colour": "red"}),
    ("optional_int", {"value": None}), ("optional_int", {"value": 3}), ("optional_int", {"value": "3"}),
])
def test_constrained_types_are_checked_as_declared(event, kwargs):
    planned, general = _both(_outgoing(event), (), kwargs)
    assert planned == general


def test_a_literal_of_strings_refuses_other_strings():
    with pytest.raises(InvalidParameterValue, match="expected one of"):
        _outgoing("literal").encode((), {"choice": "y"})


def test_plain_values_take_the_planned_path():
    outgoing = _outgoing("plain")
    accepted = {p.name: set(p.text_of) for p in outgoing._planned}
    assert accepted == {"name": {str}, "count": {int}, "ratio": {int, float}, "flag": {bool},
                        "note": {str, type(None)}, "anything": {str, int, float, bool, type(None)},
                        "either": {int, str}}
    encoded = outgoing._encode_planned({"anything": 1, "name": "a"}, EVENT_ID, None)
    assert list(encoded.fields.items()) == [
        ("id", EVENT_ID), ("api_name", "outgoing"), ("event_name", "plain"), ("version", "3"),
        (":name", '"a"'), (":count", "0"), (":ratio", "1.5"), (":flag", "false"), (":note", "null"),
        (":anything", "1"), (":either", '"x"')]
    assert encoded == outgoing._encode_general((), {"anything": 1, "name": "a"}, EVENT_ID, None)


def test_a_mutable_default_is_a_fresh_copy_per_call():
    outgoing = _outgoing("mixed")
    first = outgoing.encode((), {"name": "a", "anything": 1})
    first.values["tags"].append(1)
    assert outgoing.encode((), {"name": "a", "anything": 1}).values["tags"] == []


@pytest.mark.parametrize("event", ["plain", "mixed"])
@pytest.mark.parametrize("kwargs", CALLS)
def test_a_call_gives_what_the_general_path_gives(event, kwargs):
    planned, general = _both(_outgoing(event), (), kwargs)
    assert planned == general
    if not isinstance(general, tuple) or not isinstance(general[0], type):
        assert list(planned.fields) == list(general.fields)  # the wire order too
        assert list(planned.values) == list(general.values)


def test_schema_mismatch_is_the_same_on_both_paths():
    def validator(data):
        if data.get("name") == "bad":
            raise ValueError("name must not be bad")

    planned, general = _both(_outgoing("mixed", validator), (), {"name": "bad", "anything": 1})
    assert planned == general == (SchemaMismatch, "outgoing.mixed: parameters do not match the schema on the bus: "
                                                  "name must not be bad")
    seen = []
    _outgoing("mixed", seen.append).encode((), {"name": "a", "anything": 1, "count": 2})
    assert seen == [{"name": "a", "count": 2, "ratio": 1.5, "flag": False, "note": None, "anything": 1,
                     "either": "x", "tags": []}]


@pytest.mark.parametrize("over", [-1, 0, 1])
def test_max_entry_size_is_the_same_on_both_paths(over):
    kwargs = {"name": "a" * 40, "anything": 1}
    size = entry_size(_outgoing("plain")._encode_general((), kwargs, EVENT_ID, None).fields)
    planned, general = _both(_outgoing("plain", max_entry_size=size + over), (), kwargs)
    assert planned == general
    if over < 0:
        assert planned[0] is InvalidParameterValue and "over max_entry_size" in planned[1]
    else:
        assert planned.fields[":name"] == '"' + "a" * 40 + '"'


def test_event_ids_in_batches_are_canonical_random_uuids():
    ids = new_event_ids(3000) + new_event_ids(1)
    assert len(set(ids)) == len(ids) == 3001
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert new_event_ids(0) == []


def test_spare_event_ids_are_canonical_and_never_shared_with_a_forked_child():
    from lightbus_sync.outgoing import next_event_id

    ids = [next_event_id() for _ in range(200)]  # several batches
    assert len(set(ids)) == 200
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4 for i in ids)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids, to the parent
        try:
            os.close(read_end)
            os.write(write_end, " ".join(next_event_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ids = pipe.read().split()
    os.waitpid(pid, 0)
    parent_ids = [next_event_id() for _ in range(70)]  # more than were spare at the fork
    assert len(child_ids) == 3 and not set(child_ids) & set(parent_ids)


def test_encode_many_asks_for_the_schema_once_and_names_the_bad_item():
    asked = []

    def validator(data):
        if data.get("name") == "bad":
            raise ValueError("name must not be bad")

    def source():
        asked.append(1)
        return validator

    outgoing = OutgoingEvent(OutgoingApi.definition.event("plain"), True, source, 1_048_576)
    calls = [{"name": f"n{i}", "anything": i} for i in range(10)] + [{"name": "x", "anything": [1]}]
    encoded = outgoing.encode_many(iter(calls))
    assert asked == [1] and [e.values["anything"] for e in encoded] == [*range(10), [1]]
    assert len({e.event_id for e in encoded}) == 11
    with pytest.raises(SchemaMismatch, match=r"^fire_many\(\) item 1: outgoing.plain: .*not be bad; nothing was fired$"):
        outgoing.encode_many([{"name": "a", "anything": 1}, {"name": "bad", "anything": 1}])
    with pytest.raises(InvalidParameterValue, match=r"^fire_many\(\) item 0: .*'count'"):
        outgoing.encode_many([{"name": "a", "anything": 1, "count": "1"}])
    with pytest.raises(InvalidFireCall, match=r"item 1 is list \[1\]; nothing was fired"):
        outgoing.encode_many([{"name": "a", "anything": 1}, [1]])


def test_a_default_without_json_fails_each_fire_as_before_not_the_look_up():
    class NoJsonDefaultApi(Api):
        odd = Event(parameters=(Parameter("ratio", float, default=math.nan), Parameter("big", int, default=0)))

        class Meta:
            name = "outgoing_nan"

    outgoing = OutgoingEvent(NoJsonDefaultApi.definition.event("odd"), False, lambda: None, 0)
    planned, general = _both(outgoing, (), {})
    assert planned == general and planned[0] is InvalidParameterValue and "'ratio'" in planned[1]
    assert outgoing.encode((), {"ratio": 1.5}).fields[":ratio"] == "1.5"


def test_spare_event_ids_of_another_process_are_dropped_even_without_the_fork_hook(monkeypatch):
    """A child forked where Python's at-fork hooks do not run still sees the parent's
    pid beside the spare ids: it drops them before its first id."""
    from lightbus_sync import outgoing

    outgoing.next_event_id()  # spare ids exist now
    inherited = list(outgoing._spare_ids)
    assert inherited
    monkeypatch.setattr(outgoing, "_spare_pid", -1)  # as in a child whose hooks did not run
    fresh = outgoing.next_event_id()
    assert fresh not in inherited and not set(outgoing._spare_ids) & set(inherited)
    assert outgoing._spare_pid == os.getpid()
