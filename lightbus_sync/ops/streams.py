"""Which streams an operation looks at, and stream ids as times.

Every ops function takes a *source*: a ``Bus`` (its config gives each API's Redis URL
and ``stream_use``; its definitions, local or published on the bus, give the events of
per-event APIs) or a bare ``RedisTransport`` (one Redis; ``stream_use`` defaults to
``per_api``). APIs need not be defined locally: their stream names follow from the API
name and ``stream_use`` alone; for a per-event API without known events the streams
are found with ``SCAN``.
"""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

import attrs

from ..errors import LightbusError
from ..keys import STREAM_PER_API, STREAM_PER_EVENT, parse_stream_key, stream_key
from ..stream_ids import since_to_id
from ..transport import RedisTransport

if TYPE_CHECKING:
    from ..bus import Bus

Source = Union["Bus", RedisTransport]

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@attrs.frozen
class StreamTarget:
    """One stream to look at: its key, the API (and event, for a per-event stream) it
    carries, and the transport of the Redis holding it."""

    stream: str
    api_name: str
    event_name: Optional[str]
    transport: RedisTransport = attrs.field(eq=False, repr=False)


# --- sources ---------------------------------------------------------------------------


def is_bus(source: Any) -> bool:
    from ..bus import Bus

    return isinstance(source, Bus)


def transport_of(source: Source, api_name: Optional[str] = None) -> RedisTransport:
    """The transport holding ``api_name``'s streams (the default API's for None)."""
    if isinstance(source, RedisTransport):
        return source
    if is_bus(source):
        return source.transport_for(api_name or "default")
    raise TypeError(f"expected a Bus or a RedisTransport, got {source!r}")


def all_transports(source: Source) -> list[RedisTransport]:
    """One transport per distinct Redis URL the source's APIs use."""
    if isinstance(source, RedisTransport):
        return [source]
    seen: dict[str, RedisTransport] = {}
    for name in ["default", *sorted(n for n in source.config.apis if n != "default")]:
        transport = source.transport_for(name)
        seen.setdefault(transport.url, transport)
    return list(seen.values())


def stream_use_of(source: Source, api_name: str, default: str = STREAM_PER_API) -> str:
    if is_bus(source):
        return source.config.api(api_name).redis.stream_use
    return default


def known_events(source: Source, api_name: str) -> Optional[list[str]]:
    """The events of an API defined locally or published on the bus; None if unknown."""
    if not is_bus(source):
        return None
    definition = source.local_definition(api_name)
    if definition is None:
        try:
            document = source.schemas.remote_document(api_name)
        except Exception:  # Redis away or a bad document: fall back to SCAN
            document = None
        if document is None:
            return None
        return sorted((document.get("events") or {}).keys())
    return sorted(definition.events)


def is_known_api(source: Source, api_name: str) -> bool:
    return known_events(source, api_name) is not None


# --- stream names ----------------------------------------------------------------------


def stream_belongs_to_api(stream: str, api_name: str) -> bool:
    """True for ``api.*:stream`` and ``api.<event>:stream`` (not a nested API's streams)."""
    prefix = api_name + "."
    if not (stream.startswith(prefix) and stream.endswith(":stream")):
        return False
    middle = stream[len(prefix): -len(":stream")]
    return middle == "*" or bool(_IDENTIFIER.match(middle))


def api_streams(source: Source, api_name: str, event_name: Optional[str] = None) -> list[StreamTarget]:
    """The stream(s) of an API (or of one of its events), by its ``stream_use``."""
    transport = transport_of(source, api_name)
    use = stream_use_of(source, api_name)
    if use != STREAM_PER_EVENT:
        return [StreamTarget(stream_key(api_name, "", STREAM_PER_API), api_name, None, transport)]
    if event_name is not None:
        return [StreamTarget(stream_key(api_name, event_name, STREAM_PER_EVENT), api_name, event_name, transport)]
    events = set(known_events(source, api_name) or ())
    for stream in transport.find_keys(_glob_escape(api_name) + ".*:stream"):
        if stream_belongs_to_api(stream, api_name):
            event = parse_stream_key(stream)[1]
            if event:
                events.add(event)
    return [
        StreamTarget(stream_key(api_name, event, STREAM_PER_EVENT), api_name, event, transport)
        for event in sorted(events)
    ]


def dedupe(targets: Iterable[StreamTarget]) -> list[StreamTarget]:
    seen: set[tuple[str, str]] = set()
    result = []
    for target in targets:
        key = (target.transport.url, target.stream)
        if key not in seen:
            seen.add(key)
            result.append(target)
    return result


def existing_streams(source: Source) -> list[StreamTarget]:
    """Every event stream (a key ``<api>.<event or *>:stream``) on the source's Redis
    server(s), found with ``SCAN``, sorted by name."""
    targets: list[StreamTarget] = []
    for transport in all_transports(source):
        for stream in transport.find_keys("*:stream"):
            api_name, event_name = parse_stream_key(stream)
            if stream_belongs_to_api(stream, api_name):
                targets.append(StreamTarget(stream, api_name, event_name, transport))
    return targets


def bus_streams(
    source: Source, apis: Iterable[str] = (), *, include_local: bool = True, discover: bool = False
) -> list[StreamTarget]:
    """Streams of the bus's local APIs and registered listeners (when ``include_local``),
    of the APIs named in ``apis`` (``api`` or ``api.event``), and every event stream on
    the Redis server(s) (when ``discover``)."""
    targets: list[StreamTarget] = []
    if include_local and is_bus(source):
        for definition in source.local_apis():
            targets += api_streams(source, definition.name)
        for listener in source.listeners:
            for stream in listener.streams:
                api_name, event_name = parse_stream_key(stream)
                targets.append(StreamTarget(stream, api_name, event_name, source.transport_for(api_name)))
    for text in apis:
        api_name, event_name = resolve_api_argument(source, text)
        targets += api_streams(source, api_name, event_name)
    if discover:
        targets += existing_streams(source)
    return dedupe(targets)


def resolve_api_argument(source: Source, text: str) -> tuple[str, Optional[str]]:
    """Split ``API[.EVENT]``: dotted API names make ``a.b.c`` ambiguous, so prefer what
    is known (a defined or published API), then what exists on Redis, then the whole
    text as an API name."""
    if is_known_api(source, text):
        return text, None
    head, _, tail = text.rpartition(".")
    if head and is_known_api(source, head):
        return head, tail
    transport = transport_of(source, text)
    if transport.key_exists(stream_key(text, "", STREAM_PER_API)):
        return text, None
    if head:
        head_transport = transport_of(source, head)
        if head_transport.key_exists(stream_key(head, "", STREAM_PER_API)) or head_transport.key_exists(
            stream_key(head, tail, STREAM_PER_EVENT)
        ):
            return head, tail
    if any(stream_belongs_to_api(s, text) for s in transport.find_keys(_glob_escape(text) + ".*:stream")):
        return text, None
    return text, None


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


# --- ids and times ---------------------------------------------------------------------


def since_to_min_id(since: Union[str, datetime.datetime, None]) -> Optional[str]:
    """``--since``: a stream id, or an ISO 8601 date/datetime (naive = local time) as
    ``<unix ms>-0``. Raises ``LightbusError`` for anything else."""
    if since is None or since == "":
        return None
    try:
        found = since_to_id(since, parse_text_dates=True)
    except ValueError:
        found = None
    if found is None or found == "$":
        raise LightbusError(
            f"--since {str(since).strip()!r}: use a stream id (1700000000000-0) or an ISO 8601 datetime "
            f"(2024-05-01T10:00:00Z; without a zone it is local time)"
        )
    return found if "-" in found else found + "-0"


def text(value: Union[str, bytes, None]) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
