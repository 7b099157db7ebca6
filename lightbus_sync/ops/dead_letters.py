"""Dead letters: list, show, replay and purge the entries the runner dead-lettered.

Where they are
--------------
The runner moves an entry it gives up on to ``{<stream>}:dead`` (beside its stream, in
the same Redis Cluster slot) and acks it, in one script. What a dead-letter entry holds (the ``dl:*`` metadata fields, then the original
fields) is defined in ``lightbus_sync.dead_letter_record``; its key names in
``lightbus_sync.keys``.

Replay: to the original group only
----------------------------------
A replayed event must reach the group that failed it, and no other group of that
stream: those already handled it. Re-adding it to the original stream cannot do that:
a new entry lands at the end of the stream, and every group reads it. So a replay
writes the ORIGINAL fields (not the ``dl:*`` ones) to a per-group replay stream

    {<stream>}:replay:<group>

which only ``<group>`` has a consumer group on, and which the runner's reader for that
listener reads beside ``<stream>`` (same hash tag, so the same cluster slot: one
multi-key ``XREADGROUP`` still works). One Lua script (``lua/replay_dead_letter.lua``)
does it atomically:

1. if the dead-letter entry is gone, return nil: it was replayed or purged already, so
   replaying twice adds nothing (idempotent);
2. ``XGROUP CREATE {<stream>}:replay:<group> <group> 0 MKSTREAM`` (BUSYGROUP is fine): the
   group starts at 0, so a replay made before the runner first reads the replay stream
   is not skipped;
3. ``XADD`` the original fields to the replay stream;
4. ``XDEL`` the dead-letter entry.

The ``XADD`` comes before the ``XDEL``, and a script that fails stops there (Redis does
not roll back, but nothing after the failing command runs): if anything fails, the dead
letter stays where it was. The replayed entry starts with a delivery count of 1, so
it gets the listener's full retry budget again.

The runner reads ``replay_stream(s, group)`` beside each of its streams (from ``0``),
deletes a replay entry once it is acked or dead-lettered again (only that group reads
it), and dead-letters a replayed entry to the ORIGINAL stream's ``{<stream>}:dead``
(see lightbus_sync/keys.py).
"""

from __future__ import annotations

import datetime
from typing import Any, Iterable, Optional, Sequence, Union

import attrs


from ..dead_letter_record import METADATA_NAMES, metadata_delivery_count, metadata_time, split_dead_letter  # noqa: F401
from ..errors import LightbusError
from ..keys import DEAD_LETTER_STREAMS_GLOB, dead_letter_glob, dead_letter_stream, parse_stream_key, replay_stream, stream_of_dead
from ..stream_ids import id_time, looks_like_stream_id, parse_id
from ..transport import RedisTransport
from .formatting import duration, iso, shorten, table, timestamp, value_json
from .inspect import InspectedEvent, decode
from .streams import (
    Source,
    _glob_escape,
    all_transports,
    stream_belongs_to_api,
    text,
    transport_of,
)

_PAGE = 500


class DeadLetterNotFound(LightbusError, LookupError):
    """No dead letter with that id (it was replayed or purged, or never existed)."""


class AmbiguousDeadLetter(LightbusError, LookupError):
    """A dead-letter id found in several dead-letter streams: name the API or stream."""


@attrs.define
class DeadLetterRecord:
    """One dead-lettered entry: its ``dl:*`` metadata and the original fields."""

    dead_id: str
    dead_stream: str
    original_id: str
    stream: str
    group: str
    listener: str
    consumer: str
    delivery_count: Optional[int]
    reason: str
    error_type: str
    error: str
    time: Optional[datetime.datetime]
    event_id: str
    fields: dict[str, str]
    raw_fields: list[tuple[bytes, bytes]] = attrs.field(repr=False, factory=list)
    metadata: dict[str, str] = attrs.field(repr=False, factory=dict)
    transport: Optional[RedisTransport] = attrs.field(repr=False, eq=False, default=None)

    @property
    def api_name(self) -> Optional[str]:
        return self.fields.get("api_name") or parse_stream_key(self.stream)[0] or None

    @property
    def event_name(self) -> Optional[str]:
        return self.fields.get("event_name") or parse_stream_key(self.stream)[1]

    @property
    def dead_time(self) -> Optional[datetime.datetime]:
        """When it was dead-lettered, from its id in the dead-letter stream."""
        return id_time(self.dead_id)

    def event(self) -> Optional[InspectedEvent]:
        """The original entry decoded (parameters JSON-decoded), or marked malformed."""
        return decode(self.stream, self.original_id or self.dead_id, dict(self.raw_fields))

    def as_dict(self) -> dict[str, Any]:
        event = self.event()
        return {
            "dead_id": self.dead_id,
            "dead_stream": self.dead_stream,
            "original_id": self.original_id,
            "stream": self.stream,
            "group": self.group,
            "listener": self.listener,
            "consumer": self.consumer,
            "delivery_count": self.delivery_count,
            "reason": self.reason,
            "error_type": self.error_type,
            "error": self.error,
            "time": iso(self.time or self.dead_time),
            "event_id": self.event_id,
            "api_name": self.api_name,
            "event_name": self.event_name,
            "parameters": None if event is None or event.malformed else event.parameters,
            "malformed": None if event is None else event.malformed,
            "fields": self.fields,
        }


def parse_dead_letter(
    dead_stream: str, dead_id: Any, pairs: Sequence[tuple[bytes, bytes]], transport: Optional[RedisTransport] = None
) -> DeadLetterRecord:
    """A dead-letter entry (fields as ``(name, value)`` pairs, in stream order)."""
    metadata, raw_fields = split_dead_letter(pairs)
    fields: dict[str, str] = {}
    for name, value in raw_fields:
        fields.setdefault(text(name), text(value))
    moment = metadata_time(metadata)
    deliveries = metadata_delivery_count(metadata)
    return DeadLetterRecord(
        dead_id=text(dead_id),
        dead_stream=dead_stream,
        original_id=metadata.get("original_id", ""),
        stream=metadata.get("stream") or stream_of_dead(dead_stream) or "",
        group=metadata.get("group", ""),
        listener=metadata.get("listener", ""),
        consumer=metadata.get("consumer", ""),
        delivery_count=deliveries,
        reason=metadata.get("reason", ""),
        error_type=metadata.get("error_type", ""),
        error=metadata.get("error", ""),
        time=moment,
        event_id=metadata.get("event_id") or fields.get("id", ""),
        fields=fields,
        raw_fields=raw_fields,
        metadata=metadata,
        transport=transport,
    )


@attrs.frozen
class Filters:
    """Which dead letters: every given criterion must match (None = any)."""

    api: Optional[str] = None
    event: Optional[str] = None
    listener: Optional[str] = None
    group: Optional[str] = None
    error_type: Optional[str] = None

    def matches(self, letter: DeadLetterRecord) -> bool:
        if self.api is not None and not (
            stream_belongs_to_api(letter.stream, self.api) or letter.fields.get("api_name") == self.api
        ):
            return False
        if self.event is not None and letter.event_name != self.event:
            return False
        if self.listener is not None and letter.listener != self.listener:
            return False
        if self.group is not None and letter.group != self.group:
            return False
        if self.error_type is not None and letter.error_type != self.error_type:
            return False
        return True


# --- finding ---------------------------------------------------------------------------

StreamArg = Union[str, Iterable[str], None]


def dead_letter_streams(source: Source, stream: StreamArg = None, *, api: Optional[str] = None) -> list[tuple[RedisTransport, str]]:
    """(transport, dead-letter stream) pairs to look in: those of ``stream`` (an original
    stream key or its ``{...}:dead`` key; several allowed), else the existing ones of
    ``api`` (``SCAN``), else every existing ``{*}:dead`` stream on the source's Redis."""
    found: list[tuple[RedisTransport, str]] = []
    if stream is not None:
        for key in [stream] if isinstance(stream, str) else list(stream):
            original = stream_of_dead(key) or key
            found.append((transport_of(source, parse_stream_key(original)[0]), dead_letter_stream(original)))
        return found
    if api is not None:
        transport = transport_of(source, api)
        for key in transport.find_keys(dead_letter_glob(_glob_escape(api) + ".*")):
            original = stream_of_dead(key)
            if original is not None and stream_belongs_to_api(original, api):
                found.append((transport, key))
        return found
    for transport in all_transports(source):
        for key in transport.find_keys(DEAD_LETTER_STREAMS_GLOB):
            if stream_of_dead(key) is not None:
                found.append((transport, key))
    return found


def _sort_key(letter: DeadLetterRecord) -> tuple[int, int]:
    return parse_id(letter.dead_id)


def list_dead_letters(
    source: Source,
    stream: StreamArg = None,
    *,
    api: Optional[str] = None,
    event: Optional[str] = None,
    listener: Optional[str] = None,
    group: Optional[str] = None,
    error_type: Optional[str] = None,
    limit: Optional[int] = None,
) -> list[DeadLetterRecord]:
    """Dead letters, newest first, matching every filter given. ``source``: a Bus or a
    RedisTransport. Looks in the dead-letter stream(s) of ``stream``, else of ``api``,
    else in every dead-letter stream on the Redis server(s). ``limit``: at most this
    many (None or 0: all)."""
    filters = Filters(api, event, listener, group, error_type)
    letters: list[DeadLetterRecord] = []
    for transport, dead_stream in dead_letter_streams(source, stream, api=api):
        letters += _scan(transport, dead_stream, filters, limit or None)
    letters.sort(key=_sort_key, reverse=True)
    return letters[:limit] if limit else letters


def _scan(transport: RedisTransport, dead_stream: str, filters: Filters, limit: Optional[int]) -> list[DeadLetterRecord]:
    found: list[DeadLetterRecord] = []
    end = "+"
    while True:
        batch = transport.stream_entries(dead_stream, "-", end, _PAGE, reverse=True)
        for dead_id, pairs in batch:
            letter = parse_dead_letter(dead_stream, dead_id, pairs, transport)
            if filters.matches(letter):
                found.append(letter)
                if limit and len(found) >= limit:
                    return found
        if len(batch) < _PAGE:
            return found
        end = "(" + text(batch[-1][0])


def find_dead_letters(
    source: Source, ids: Iterable[str], stream: StreamArg = None, *, api: Optional[str] = None,
    filters: Optional[Filters] = None,
) -> tuple[list[DeadLetterRecord], list[str]]:
    """The dead letters with these ids (dead-letter stream ids) that match ``filters``,
    and the ids not found. Ids are per dead-letter stream, so two streams may hold the
    same one: AmbiguousDeadLetter is raised then, unless ``stream``, ``api`` or the
    filters tell which."""
    streams = dead_letter_streams(source, stream, api=api)
    found: list[DeadLetterRecord] = []
    missing: list[str] = []
    for dead_id in dict.fromkeys(str(i) for i in ids):
        if not looks_like_stream_id(dead_id):
            missing.append(dead_id)
            continue
        matches = []
        for transport, dead_stream in streams:
            for entry_id, pairs in transport.stream_entries(dead_stream, dead_id, dead_id, 1):
                letter = parse_dead_letter(dead_stream, entry_id, pairs, transport)
                if filters is None or filters.matches(letter):
                    matches.append(letter)
        if len(matches) > 1:
            raise AmbiguousDeadLetter(
                f"dead letter {dead_id} is in several dead-letter streams "
                f"({', '.join(m.dead_stream for m in matches)}); name the API or stream"
            )
        if matches:
            found.append(matches[0])
        else:
            missing.append(dead_id)
    return found, missing


def get_dead_letter(
    source: Source, dead_id: str, stream: StreamArg = None, *, api: Optional[str] = None,
    filters: Optional[Filters] = None,
) -> DeadLetterRecord:
    """One dead letter by its id in the dead-letter stream (``show``)."""
    found, _ = find_dead_letters(source, [dead_id], stream, api=api, filters=filters)
    if not found:
        raise DeadLetterNotFound(f"no dead letter {dead_id} (replayed or purged already, or a wrong id)")
    return found[0]


# --- replay and purge ------------------------------------------------------------------


@attrs.frozen
class Replayed:
    dead_id: str
    dead_stream: str
    group: str
    replay_stream: str
    new_id: str

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class ReplayResult:
    replayed: list[Replayed] = attrs.Factory(list)
    missing: list[str] = attrs.Factory(list)  # ids not found (replayed or purged already)
    skipped: list[tuple[str, str]] = attrs.Factory(list)  # (dead id, why) not replayable

    def as_dict(self) -> dict[str, Any]:
        return {
            "replayed": [r.as_dict() for r in self.replayed],
            "missing": self.missing,
            "skipped": [{"dead_id": i, "why": why} for i, why in self.skipped],
        }


def _select(
    source: Source, ids: Optional[Iterable[Union[str, DeadLetterRecord]]], all: bool, stream: StreamArg, filters: Filters
) -> tuple[list[DeadLetterRecord], list[str]]:
    if ids is not None:
        ids = list(ids)
    if ids:
        letters = [i for i in ids if isinstance(i, DeadLetterRecord)]
        wanted = [str(i) for i in ids if not isinstance(i, DeadLetterRecord)]
        missing: list[str] = []
        if wanted:
            found, missing = find_dead_letters(source, wanted, stream, api=filters.api, filters=filters)
            letters += found
        return letters, missing
    if not all:
        raise ValueError("name the dead letters (ids), or pass all=True (with filters to narrow it)")
    letters = []
    for transport, dead_stream in dead_letter_streams(source, stream, api=filters.api):
        letters += _scan(transport, dead_stream, filters, None)
    return letters, []


def replay(
    source: Source,
    ids: Optional[Iterable[Union[str, DeadLetterRecord]]] = None,
    *,
    all: bool = False,
    stream: StreamArg = None,
    api: Optional[str] = None,
    event: Optional[str] = None,
    listener: Optional[str] = None,
    group: Optional[str] = None,
    error_type: Optional[str] = None,
) -> ReplayResult:
    """Send dead letters back to their original consumer group (only), oldest first,
    each atomically (see the module docs): the original fields go to
    ``{<stream>}:replay:<group>`` and the dead letter is deleted. ``ids``: dead-letter
    ids or ``DeadLetterRecord`` records; or ``all=True`` with the filters. An id already
    replayed or purged is reported in ``missing`` and changes nothing."""
    filters = Filters(api, event, listener, group, error_type)
    letters, missing = _select(source, ids, all, stream, filters)
    result = ReplayResult(missing=list(missing))
    for letter in sorted(letters, key=_sort_key):
        if not letter.group or not letter.stream:
            result.skipped.append((letter.dead_id, "no dl:group/dl:stream metadata: the original group is unknown"))
            continue
        if not letter.raw_fields:
            result.skipped.append((letter.dead_id, "no original fields (the entry was empty)"))
            continue
        transport = letter.transport or transport_of(source, parse_stream_key(letter.stream)[0])
        target = replay_stream(letter.stream, letter.group)
        flat: list[bytes] = []
        for name, value in letter.raw_fields:
            flat += [name, value]
        new_id = transport.replay_dead_letter(letter.dead_stream, target, letter.dead_id, letter.group, flat)
        if new_id is None:
            result.missing.append(letter.dead_id)
        else:
            result.replayed.append(Replayed(letter.dead_id, letter.dead_stream, letter.group, target, new_id))
    return result


def purge(
    source: Source,
    ids: Optional[Iterable[Union[str, DeadLetterRecord]]] = None,
    *,
    all: bool = False,
    stream: StreamArg = None,
    api: Optional[str] = None,
    event: Optional[str] = None,
    listener: Optional[str] = None,
    group: Optional[str] = None,
    error_type: Optional[str] = None,
) -> int:
    """Delete dead letters (``ids``, or ``all=True`` with the filters); returns how many
    were deleted. Only entries seen matching are deleted (``XDEL``), so a dead letter
    added meanwhile is kept."""
    filters = Filters(api, event, listener, group, error_type)
    letters, _ = _select(source, ids, all, stream, filters)
    by_stream: dict[tuple[int, str], tuple[RedisTransport, list[str]]] = {}
    for letter in letters:
        transport = letter.transport or transport_of(source, parse_stream_key(letter.stream)[0])
        by_stream.setdefault((id(transport), letter.dead_stream), (transport, []))[1].append(letter.dead_id)
    deleted = 0
    for (_, dead_stream), (transport, dead_ids) in by_stream.items():
        deleted += transport.delete_entries(dead_stream, dead_ids)
    return deleted


# --- rendering -------------------------------------------------------------------------


def render_list(letters: Sequence[DeadLetterRecord], now: Optional[float] = None) -> str:
    if not letters:
        return "no dead letters"
    now = now if now is not None else datetime.datetime.now(datetime.timezone.utc).timestamp()
    rows = []
    for letter in letters:
        moment = letter.time or letter.dead_time
        rows.append([
            letter.dead_id,
            f"{timestamp(moment)} ({duration(now - moment.timestamp())} ago)" if moment else "-",
            letter.stream, letter.group or "-",
            f"{letter.api_name}.{letter.event_name}" if letter.event_name else (letter.api_name or "-"),
            "-" if letter.delivery_count is None else letter.delivery_count,
            shorten(letter.reason, 32),
            shorten(f"{letter.error_type}: {letter.error}" if letter.error_type else letter.error, 60) or "-",
        ])
    return table(["DEAD ID", "DEAD-LETTERED", "STREAM", "GROUP", "EVENT", "DELIVERIES", "REASON", "ERROR"],
                 rows, right=[5])


def render_one(letter: DeadLetterRecord) -> str:
    event = letter.event()
    lines = [
        f"dead letter      {letter.dead_id} in {letter.dead_stream}",
        f"time             {timestamp(letter.time or letter.dead_time)}",
        f"original entry   {letter.original_id or '-'} in {letter.stream}",
        f"group            {letter.group or '-'}",
        f"listener         {letter.listener or '-'}",
        f"consumer         {letter.consumer or '-'}",
        f"deliveries       {'-' if letter.delivery_count is None else letter.delivery_count}",
        f"reason           {letter.reason or '-'}",
        f"error            {(letter.error_type + ': ') if letter.error_type else ''}{letter.error or '-'}",
        f"event id         {letter.event_id or '-'}",
    ]
    if event is not None and event.malformed is None:
        lines.append(f"event            {event.canonical_name} v{event.version}")
        lines.append("parameters")
        lines += [f"    {name} = {value_json(value)}" for name, value in event.parameters.items()]
    else:
        if event is not None:
            lines.append(f"malformed        {event.malformed}")
        lines.append("fields")
        lines += [f"    {name} = {value}" for name, value in letter.fields.items()]
    return "\n".join(lines)
