"""The quick check in front of the compiled schema validators: it may only say "valid"
where the full validator says so too, and the validators as used keep their verdicts."""

from __future__ import annotations

import itertools

import fastjsonschema
import pytest

from lightbus_sync.schema.quick_check import quick_check

SIMPLE = {
    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "title": "t",
    "additionalProperties": False, "required": ["s", "i"],
    "properties": {"s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"},
                   "b": {"type": "boolean", "default": False}},
}
VALUES = ["x", "", 0, 7, -1, 2**70, 1.0, 1.5, float("nan"), True, False, None, [], {}, [1], {"a": 1}]


def _datas():
    yield None
    yield []
    yield "s"
    yield {}
    for s, i in itertools.product(VALUES, VALUES):
        yield {"s": s, "i": i}
    for n, b in itertools.product(VALUES, VALUES):
        yield {"s": "x", "i": 1, "n": n, "b": b}
    yield {"s": "x", "i": 1, "extra": 1}
    yield {"s": "x"}


@pytest.mark.parametrize("additional", [False, True, None])
def test_the_quick_check_never_accepts_what_the_schema_rejects(additional):
    schema = dict(SIMPLE)
    if additional is None:
        del schema["additionalProperties"]
    else:
        schema["additionalProperties"] = additional
    quick, full = quick_check(schema), fastjsonschema.compile(schema, use_default=False, use_formats=False)
    assert quick is not None
    accepted_quickly = 0
    for data in _datas():
        try:
            full(data)
            valid = True
        except fastjsonschema.JsonSchemaException:
            valid = False
        if quick(data):
            accepted_quickly += 1
            assert valid, data
    assert accepted_quickly > 20  # and it does accept the plain cases


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"s": {"type": "string", "minLength": 2}}},
    {"type": "object", "properties": {"s": {"type": ["string", "null"]}}},
    {"type": "object", "properties": {"s": {"anyOf": [{"type": "string"}]}}},
    {"type": "object", "properties": {"s": {"type": "array"}}},
    {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
    {"type": "object", "properties": {}, "minProperties": 1},
    {"type": "array"},
    {"type": "object", "properties": {"s": {"$ref": "#/definitions/x"}}},
    "not a schema",
])
def test_other_schemas_get_no_quick_check(schema):
    assert quick_check(schema) is None


def test_the_registry_validators_keep_their_verdicts(redis_url):
    import lightbus_sync
    from lightbus_sync import Api, Event, Parameter

    class QuickApi(Api):
        plain = Event(parameters=(Parameter("s", str), Parameter("i", int), Parameter("b", bool, default=False)))

        class Meta:
            name = "quick_check_test"

    bus = lightbus_sync.create(redis_url=redis_url, service_name="q", process_name="q")
    try:
        validate = bus.schemas.validator("quick_check_test", "plain")
        assert validate({"s": "x", "i": 1}) == {"s": "x", "i": 1}
        for bad in ({"s": "x"}, {"s": 1, "i": 1}, {"s": "x", "i": True}, {"s": "x", "i": 1, "z": 0}):
            with pytest.raises(fastjsonschema.JsonSchemaException):
                validate(bad)
        validate({"s": "x", "i": 1.0})  # the full validator's verdict (an integral number)
    finally:
        bus.close()
