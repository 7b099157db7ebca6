"""``lightbus-sync inspect``: recent events of an API (or one event), decoded.

Reading never touches consumer groups: ``XREVRANGE`` pages newest first, and
``--follow`` tails with ``XREAD BLOCK`` (nothing is acked, claimed or created). An API
need not be defined locally: its stream names follow from its name and ``stream_use``.
Lightbus's "noop" entries are skipped; entries that do not decode are shown as
malformed with their raw fields.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any, Callable, Optional

import attrs
import redis

from ..backoff import Backoff
from ..errors import MalformedEntry
from ..transport import TRANSIENT_ERRORS
from ..wire import decode_entry, is_noop
from .formatting import iso, timestamp, value_json
from ..stream_ids import id_time, looks_like_stream_id, parse_id
from .streams import Source, StreamTarget, api_streams, since_to_min_id, text

_PAGE = 500


@attrs.define
class InspectedEvent:
    """One stream entry, decoded (or ``malformed`` with the reason)."""

    stream: str
    entry_id: str
    time: Optional[datetime.datetime]
    event_id: Optional[str]
    api_name: Optional[str]
    event_name: Optional[str]
    version: Optional[int]
    parameters: dict[str, Any]
    malformed: Optional[str] = None
    fields: dict[str, str] = attrs.Factory(dict)  # raw fields, for malformed entries

    @property
    def canonical_name(self) -> str:
        return f"{self.api_name}.{self.event_name}"

    def as_dict(self) -> dict[str, Any]:
        data = {
            "stream": self.stream,
            "entry_id": self.entry_id,
            "time": iso(self.time),
            "event_id": self.event_id,
            "api_name": self.api_name,
            "event_name": self.event_name,
            "version": self.version,
            "parameters": self.parameters,
        }
        if self.malformed is not None:
            data["malformed"] = self.malformed
            data["fields"] = self.fields
        return data


def decode(stream: str, entry_id: Any, fields: Optional[dict]) -> Optional[InspectedEvent]:
    """An entry as an ``InspectedEvent``; None for a noop entry."""
    entry_id = text(entry_id)
    if fields and is_noop(fields):
        return None
    try:
        raw = decode_entry(fields)
    except MalformedEntry as exc:
        plain = {text(k): text(v) for k, v in (fields or {}).items()}
        return InspectedEvent(
            stream, entry_id, id_time(entry_id), plain.get("id") or None, plain.get("api_name") or None,
            plain.get("event_name") or None, None, {}, malformed=str(exc), fields=plain,
        )
    return InspectedEvent(
        stream, entry_id, id_time(entry_id), raw.id, raw.api_name, raw.event_name, raw.version, raw.parameters
    )


def _matches(event: InspectedEvent, event_name: Optional[str], event_id: Optional[str]) -> bool:
    if event_name is not None and event.event_name != event_name:
        return False
    if event_id is not None and event.event_id != event_id and event.entry_id != event_id:
        return False
    return True


def _sort_key(event: InspectedEvent) -> tuple[int, int]:
    return parse_id(event.entry_id)


def recent_events(
    source: Source,
    api_name: str,
    event_name: Optional[str] = None,
    *,
    limit: Optional[int] = 10,
    since: Any = None,
    event_id: Optional[str] = None,
    until: Optional[dict[str, str]] = None,
) -> list[InspectedEvent]:
    """The newest events of an API (or of one event), newest first.

    ``limit``: at most this many (None or 0: all). ``since``: only entries from this
    stream id or datetime (ISO text or ``datetime``) on. ``event_id``: only the
    event(s) with this event id (a retried fire may have written it twice), or the
    entry with this stream id. ``until``: stream -> highest id to include.
    """
    targets = api_streams(source, api_name, event_name)
    min_id = since_to_min_id(since) or "-"
    limit = limit or None
    if event_id is not None and looks_like_stream_id(event_id) and "-" in event_id:
        found: list[InspectedEvent] = []
        for target in targets:
            for entry_id, pairs in target.transport.stream_entries(target.stream, event_id, event_id, 1):
                event = decode(target.stream, entry_id, dict(pairs))
                if event is not None:
                    found.append(event)
        return found[:limit] if limit else found
    events: list[InspectedEvent] = []
    for target in targets:
        events += _scan_stream(target, event_name, event_id, min_id, (until or {}).get(target.stream, "+"), limit)
    events.sort(key=_sort_key, reverse=True)
    return events[:limit] if limit else events


def _scan_stream(
    target: StreamTarget, event_name: Optional[str], event_id: Optional[str], min_id: str, max_id: str,
    limit: Optional[int],
) -> list[InspectedEvent]:
    """Page newest first from ``max_id`` down to ``min_id`` until ``limit`` match."""
    found: list[InspectedEvent] = []
    filtering = event_id is not None or (event_name is not None and target.event_name is None)
    end = max_id
    while True:
        page = _PAGE if filtering or not limit else max(1, min(_PAGE, limit - len(found)))
        batch = target.transport.stream_entries(target.stream, min_id, end, page, reverse=True)
        for entry_id, pairs in batch:
            event = decode(target.stream, entry_id, dict(pairs))
            if event is None or not _matches(event, event_name, event_id):
                continue
            found.append(event)
            if limit and len(found) >= limit:
                return found
        if len(batch) < page:
            return found
        end = "(" + text(batch[-1][0])


def top_ids(source: Source, api_name: str, event_name: Optional[str] = None) -> dict[str, str]:
    """stream -> id of its newest entry now (``0-0`` if empty or missing): where a
    ``follow_events()`` started after ``recent_events(until=...)`` picks up."""
    ids = {}
    for target in api_streams(source, api_name, event_name):
        newest = target.transport.stream_entries(target.stream, "-", "+", 1, reverse=True)
        ids[target.stream] = text(newest[0][0]) if newest else "0-0"
    return ids


def follow_events(
    source: Source,
    api_name: str,
    event_name: Optional[str] = None,
    *,
    on_event: Callable[[InspectedEvent], Any],
    after: Optional[dict[str, str]] = None,
    stop: Optional[threading.Event] = None,
    block_ms: int = 1000,
    max_events: Optional[int] = None,
    on_error: Optional[Callable[[BaseException], Any]] = None,
) -> int:
    """Call ``on_event`` for each new event (oldest first) until ``stop`` is set,
    ``max_events`` were seen, or KeyboardInterrupt. ``after``: stream -> id to start
    after (default: the newest entry now). Connection loss is retried with backoff.
    Returns how many events were passed on."""
    targets = api_streams(source, api_name, event_name)
    if not targets:
        return 0
    transport = targets[0].transport
    positions = dict(after) if after is not None else top_ids(source, api_name, event_name)
    for target in targets:
        positions.setdefault(target.stream, "0-0")
    client = transport.reading_client(block_ms)
    stop = stop or threading.Event()
    seen = 0
    delay = Backoff(0.1, 5.0)
    while not stop.is_set():
        try:
            reply = transport.read_streams(client, positions, 100, block_ms)
        except (*TRANSIENT_ERRORS, redis.ResponseError) as exc:
            if on_error is not None:
                on_error(exc)
            stop.wait(delay.next())
            continue
        delay.reset()
        events = []
        for stream, entries in reply:
            for entry_id, fields in entries:
                positions[stream] = text(entry_id)
                event = decode(stream, entry_id, fields)
                if event is not None and _matches(event, event_name, None):
                    events.append(event)
        events.sort(key=_sort_key)
        for event in events:
            on_event(event)
            seen += 1
            if max_events is not None and seen >= max_events:
                return seen
    return seen


def render_event(event: InspectedEvent) -> str:
    """``<time>  <entry id>  <api>.<event> v<n>  id <event id>`` then one line per parameter."""
    if event.malformed is not None:
        lines = [f"{timestamp(event.time)}  {event.entry_id}  MALFORMED: {event.malformed}"]
        lines += [f"    {k} = {v}" for k, v in event.fields.items()]
        return "\n".join(lines)
    lines = [f"{timestamp(event.time)}  {event.entry_id}  {event.canonical_name} v{event.version}  id {event.event_id}"]
    lines += [f"    {name} = {value_json(value)}" for name, value in event.parameters.items()]
    return "\n".join(lines)
