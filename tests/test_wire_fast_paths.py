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
