"""Replay streams: ``{<stream>}:replay:<group>`` holds dead letters replayed for one
consumer group (``lightbus-sync dead-letters replay``, lightbus_sync.ops.dead_letters);
that group alone reads it, beside the stream, from 0, and deletes each entry once acked."""

from __future__ import annotations

_REPLAY_INFIX = "}:replay:"


def replay_stream(stream: str, group: str) -> str:
    """``{<stream>}:replay:<group>``: same hash tag as the stream, so the same cluster slot."""
    return "{" + stream + _REPLAY_INFIX + group


def original_stream(stream: str) -> str:
    """The stream a replay stream replays into; any other stream unchanged."""
    if stream.startswith("{") and _REPLAY_INFIX in stream:
        return stream[1:].partition(_REPLAY_INFIX)[0]
    return stream


def is_replay_stream(stream: str) -> bool:
    return original_stream(stream) != stream
