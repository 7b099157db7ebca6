"""Replay streams: ``{<stream>}:replay:<group>`` holds dead letters replayed for one
consumer group (``lightbus-sync dead-letters replay``, lightbus_sync.ops.dead_letters);
that group alone reads it, beside the stream, from 0, and deletes each entry once acked."""

from __future__ import annotations

from typing import Optional

_REPLAY_INFIX = "}:replay:"


def replay_stream(stream: str, group: str) -> str:
    """``{<stream>}:replay:<group>``: same hash tag as the stream, so the same cluster slot."""
    return "{" + stream + _REPLAY_INFIX + group


def original_stream_of_replay(key: str) -> Optional[tuple[str, str]]:
    """(stream, group) of a replay stream key; None for any other key."""
    if key.startswith("{") and _REPLAY_INFIX in key:
        stream, _, group = key[1:].partition(_REPLAY_INFIX)
        if stream and group:
            return stream, group
    return None


def original_stream(stream: str) -> str:
    """The stream a replay stream replays into; any other stream unchanged."""
    parsed = original_stream_of_replay(stream)
    return stream if parsed is None else parsed[0]


def is_replay_stream(stream: str) -> bool:
    return original_stream_of_replay(stream) is not None
