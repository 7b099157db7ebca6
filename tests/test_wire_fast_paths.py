"""The cheap encodings fire() uses must give exactly what the general ones give."""

import json
import uuid

import pytest

from lightbus_sync.wire import encode_event, new_event_id


def test_event_ids_are_canonical_random_uuids():
    ids = [new_event_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("value", [
    "adam", "", 'quote " backslash \\ newline \n tab \t', "zoë", "snowman ☃", "\x00\x1f", "\ud83d\ude00",
    True, False, None, 0, -7, 2**70, 1.5, -0.0, [1, "a"], {"z": 1, "a": [True, None]},
])
def test_parameter_json_matches_the_general_encoder(value):
    fields = encode_event("id", "api", "event", 1, {"p": value})
    assert fields[":p"] == json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("text", [
    '"adam"', '""', '"a\\"b"', '"\\u00e9"', '"zo\\u00eb"', '"a" ', ' "a"', '"a"b"', '"tab\there"', '"unterminated',
    "true", "false", "null", "True", "nul", "0", "7", "123456789012345678901234567890", "-7", "007", "1.5", "1e3",
    "\u0661", "\u00b2", "[1, \"a\"]", '{"a": null}', "", " ", "NaN", "Infinity",
])
def test_parameter_json_decodes_as_the_general_decoder(text):
    from lightbus_sync.errors import MalformedEntry
    from lightbus_sync.wire import decode_entry, decode_json

    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            decode_json(text)
        with pytest.raises(MalformedEntry, match="parameter 'p' is not valid JSON"):
            decode_entry({b"id": b"i", b"api_name": b"a", b"event_name": b"e", b"version": b"1", b":p": text.encode()})
        return
    decoded = decode_json(text)
    assert repr(decoded) == repr(expected) and type(decoded) is type(expected)  # NaN != NaN
    raw = decode_entry({b"id": b"i", b"api_name": b"a", b"event_name": b"e", b"version": b"1", b":p": text.encode()})
    assert repr(raw.parameters) == repr({"p": expected})


def test_incoming_values_already_of_their_type_skip_the_casts_with_the_same_result():
    import attrs

    import lightbus_sync
    from lightbus_sync import Api, Event, Parameter
    from lightbus_sync.errors import InvalidIncomingEvent
    from lightbus_sync.wire import RawEvent

    class FastCastApi(Api):
        plain = Event(parameters=(Parameter("s", str), Parameter("i", int), Parameter("f", float),
                                  Parameter("b", bool, default=False), Parameter("a", object, default=None)))

        class Meta:
            name = "fast_cast_test"

    bus = lightbus_sync.create(redis_url="redis://127.0.0.1:1/0", service_name="f", process_name="f")
    listener = bus.fast_cast_test.plain.listen(lambda **kwargs: None, listener_name="fast")
    binding = listener.binding_for("fast_cast_test", "plain")
    assert binding.exact is not None
    slow = attrs.evolve(binding, exact=None)
    cases = [
        {"s": "x", "i": 1, "f": 1.5, "b": True, "a": [1]},
        {"s": "x", "i": 1, "f": 1, "b": True, "a": None},  # an int for a float: cast
        {"s": 5, "i": "7", "f": 1.5, "b": 1, "a": {}},  # lenient casts
        {"s": "x", "i": 1, "f": 1.5},  # defaults
        {"s": "x", "i": True, "f": 1.5, "b": True, "a": 1},  # refused
        {"s": "x", "i": 1, "f": 1.5, "b": True, "z": 1},  # unknown
        {"i": 1, "f": 1.5, "b": True, "a": 1, "z": 2},  # missing and unknown
    ]
    for parameters in cases:
        raw = RawEvent("id", "fast_cast_test", "plain", 1, parameters)
        outcomes = []
        for which in (binding, slow):
            try:
                result = which.structure(raw)
                outcomes.append(("ok", result, [type(v) for v in result.values()], list(result)))
            except InvalidIncomingEvent as exc:
                outcomes.append(("error", str(exc)))
        assert outcomes[0] == outcomes[1], parameters


def test_schema_is_skipped_only_for_exact_entries_of_the_local_definition():
    """``IncomingDecoder.parameters`` skips the schema only where it cannot refuse: the
    event's definition is this process's own, bound as is, and the entry holds exactly
    its parameters with their plain types. Anything else goes through the validator."""
    import attrs

    import lightbus_sync
    from lightbus_sync import Api, Event, Parameter
    from lightbus_sync.errors import InvalidIncomingEvent
    from lightbus_sync.incoming import IncomingDecoder
    from lightbus_sync.wire import RawEvent

    class SkipSchemaApi(Api):
        signed_up = Event(parameters=(Parameter("name", str), Parameter("age", int)))

        class Meta:
            name = "skip_schema_test"

    bus = lightbus_sync.create(redis_url="redis://127.0.0.1:1/0", service_name="s", process_name="s",
                               config={"apis": {"default": {"validate": {"incoming": True}}}})
    listener = bus.skip_schema_test.signed_up.listen(lambda **kwargs: None, listener_name="skip")
    binding = listener.binding_for("skip_schema_test", "signed_up")
    checked: list[dict] = []

    def validator(api, event):
        def refuse_adults(data):
            checked.append(dict(data))
            if isinstance(data.get("age"), int) and data["age"] >= 18:
                raise ValueError("a schema published elsewhere refuses adults")
        return refuse_adults

    decoder = IncomingDecoder(bus.config.api, validator, bus.local_event)
    adult = RawEvent("id", "skip_schema_test", "signed_up", 1, {"name": "ann", "age": 30})
    assert decoder.parameters(adult, binding) == {"name": "ann", "age": 30}
    assert checked == []  # the local schema accepts it by construction
    # the same entry is validated when the definition bound is not the local one (an API
    # known from another service's schema), or when nothing says which events are local
    foreign = attrs.evolve(binding, definition=attrs.evolve(binding.definition))
    with pytest.raises(InvalidIncomingEvent, match="refuses adults"):
        decoder.parameters(adult, foreign)
    with pytest.raises(InvalidIncomingEvent, match="refuses adults"):
        IncomingDecoder(bus.config.api, validator).parameters(adult, binding)
    # entries that need a cast, or lack a parameter, are validated too
    checked.clear()
    for parameters in ({"name": "ann", "age": "7"}, {"name": "ann"}, {"name": "ann", "age": 7, "x": 1}):
        try:
            decoder.parameters(RawEvent("id", "skip_schema_test", "signed_up", 1, parameters), binding)
        except InvalidIncomingEvent:
            pass
    assert checked == [{"name": "ann", "age": "7"}, {"name": "ann"}, {"name": "ann", "age": 7, "x": 1}]


def test_schema_is_checked_when_a_handler_annotation_narrows_the_declared_type():
    """An event declaring ``items: list`` with a handler annotated ``items: int``: an
    entry holding ``5`` fits the handler but not the event's own schema, so the schema
    still decides (the entry is refused, as the runner would dead-letter it)."""
    import lightbus_sync
    from lightbus_sync import Api, Event, Parameter
    from lightbus_sync.errors import InvalidIncomingEvent
    from lightbus_sync.incoming import IncomingDecoder
    from lightbus_sync.wire import RawEvent

    class NarrowedApi(Api):
        ordered = Event(parameters=(Parameter("items", list),))

        class Meta:
            name = "narrowed_schema_test"

    bus = lightbus_sync.create(redis_url="redis://127.0.0.1:1/0", service_name="n", process_name="n",
                               config={"apis": {"default": {"validate": {"incoming": True}}}})

    def handler(items: int) -> None:
        pass

    listener = bus.narrowed_schema_test.ordered.listen(handler, listener_name="narrowed")
    binding = listener.binding_for("narrowed_schema_test", "ordered")
    assert binding.exact is not None and not binding.exact_as_declared
    decoder = IncomingDecoder(bus.config.api, bus.schemas.validator, bus.local_event)
    with pytest.raises(InvalidIncomingEvent, match="must be array"):
        decoder.parameters(RawEvent("id", "narrowed_schema_test", "ordered", 1, {"items": 5}), binding)
