"""Every Redis key lightbus_sync reads or writes is built (and parsed) here.

=====================================  =====================================================
``<api>.*:stream``                     an API's events (``stream_use: per_api``, the default)
``<api>.<event>:stream``               one event's stream (``stream_use: per_event``)
``{<stream>}:dead``                    entries dead-lettered from ``<stream>``
``{<stream>}:replay:<group>``          dead letters replayed for one consumer group alone
``{<stream>}:attempts``                hash: handler runs started on redelivered entries,
                                       field ``<group> [replay ]<entry id>``; and marks of
                                       scheduled retries, ``retry <group> [replay ]<id>``
``schema:<api>``                       an API's published schema (JSON)
``schemas``                            set of the API names with a published schema
=====================================  =====================================================

The hash-tag rule: every key that belongs to a stream is named ``{<stream>}:<suffix>``.
Redis Cluster hashes only the part between the first ``{`` and ``}``, and a stream key
itself holds no braces, so ``{<stream>}:x`` is in the same slot as ``<stream>``: the Lua
scripts (dead-lettering, replay) and multi-key reads that name a stream and its
companions never fail with ``CROSSSLOT``. Stream names hold no ``{``/``}`` (API and
event names are checked identifiers), which keeps the rule exact.
"""

from __future__ import annotations

from typing import Optional, Union

STREAM_PER_API = "per_api"
STREAM_PER_EVENT = "per_event"

_STREAM_SUFFIX = ":stream"
_DEAD_SUFFIX = "}:dead"
_REPLAY_INFIX = "}:replay:"
_ATTEMPTS_SUFFIX = "}:attempts"

#: The set of API names that have a published schema.
SCHEMAS_SET = "schemas"
_SCHEMA_PREFIX = "schema:"


# --- event streams ---------------------------------------------------------------------


def stream_key(api_name: str, event_name: str, stream_use: str) -> str:
    """``{api}.*:stream`` (per_api, the default) or ``{api}.{event}:stream`` (per_event)."""
    if stream_use == STREAM_PER_EVENT:
        return f"{api_name}.{event_name}{_STREAM_SUFFIX}"
    return f"{api_name}.*{_STREAM_SUFFIX}"


def parse_stream_key(stream: str) -> tuple[str, Optional[str]]:
    """``api.*:stream`` -> (api, None); ``api.event:stream`` -> (api, event)."""
    base = stream[: -len(_STREAM_SUFFIX)] if stream.endswith(_STREAM_SUFFIX) else stream
    api_name, _, event_name = base.rpartition(".")
    if not api_name:
        return base, None
    return api_name, None if event_name == "*" else event_name


# --- a stream's companions (hash-tagged: the stream's cluster slot) ----------------------


def dead_letter_stream(stream: str) -> str:
    """``{<stream>}:dead``: beside its stream, in the same Redis Cluster slot."""
    return "{" + stream + _DEAD_SUFFIX


def stream_of_dead(dead_stream: str) -> Optional[str]:
    """The original stream of ``{<stream>}:dead``; None for another key."""
    if dead_stream.startswith("{") and dead_stream.endswith(_DEAD_SUFFIX):
        return dead_stream[1: -len(_DEAD_SUFFIX)]
    return None


#: A glob matching every dead-letter stream (for ``SCAN``).
DEAD_LETTER_STREAMS_GLOB = "{*" + _DEAD_SUFFIX


def dead_letter_glob(stream_glob: str) -> str:
    """A ``SCAN`` pattern for the dead-letter streams of streams matching ``stream_glob``."""
    return "{" + stream_glob + _DEAD_SUFFIX


def replay_stream(stream: str, group: str) -> str:
    """``{<stream>}:replay:<group>``: dead letters replayed for ``group`` alone."""
    return "{" + stream + _REPLAY_INFIX + group


def parse_replay_stream(key: str) -> Optional[tuple[str, str]]:
    """(stream, group) of a replay stream key; None for any other key."""
    if key.startswith("{") and _REPLAY_INFIX in key:
        stream, _, group = key[1:].partition(_REPLAY_INFIX)
        if stream and group:
            return stream, group
    return None


def original_stream(stream: str) -> str:
    """The stream a replay stream replays into; any other stream unchanged."""
    parsed = parse_replay_stream(stream)
    return stream if parsed is None else parsed[0]


def is_replay_stream(stream: str) -> bool:
    return parse_replay_stream(stream) is not None


def attempts_key(stream: str) -> str:
    """``{<stream>}:attempts``: a hash counting, per ``<group> <entry id>``, the handler
    runs started on redeliveries of entries not yet acked. A replay stream's entries are
    counted in its original stream's hash (the same slot)."""
    return "{" + original_stream(stream) + _ATTEMPTS_SUFFIX


def attempts_field(stream: str, group: str, entry_id: Union[str, bytes]) -> str:
    """The field of ``attempts_key(stream)`` for one entry of one group (the ids of a
    stream and its replay stream may be equal, so replayed entries get their own)."""
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    replayed = "replay " if is_replay_stream(stream) else ""
    return f"{group} {replayed}{entry_id}"


# --- schemas -----------------------------------------------------------------------------


def schema_key(api_name: str) -> str:
    """``schema:<api>``: the API's schema document (as Lightbus names it)."""
    return _SCHEMA_PREFIX + api_name


def retry_mark_field(stream: str, group: str, entry_id: Union[str, bytes]) -> str:
    """The field of ``attempts_key(stream)`` marking an entry whose retry is scheduled:
    whoever claims it next knows the claim is a retry, not a crash recovery."""
    return "retry " + attempts_field(stream, group, entry_id)
