"""Redis stream ids (``<unix ms>-<seq>``): parse, sort, and turn ``since`` into one."""

from __future__ import annotations

import datetime
import re
from typing import Optional, Union

_STREAM_ID = re.compile(r"^\d+(-\d+)?$")

StreamId = Union[str, bytes]

#: The id before every entry: a group there has read nothing.
ZERO_ID = "0-0"


def as_text(value: Union[str, bytes, None]) -> str:
    """A reply value (an id, a name) as text ("" for None)."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def looks_like_stream_id(text: str) -> bool:
    """``<ms>`` or ``<ms>-<seq>``, digits only."""
    return bool(_STREAM_ID.match(text))


def parse_id(entry_id: StreamId) -> tuple[int, int]:
    """(ms, seq) of an id (``<ms>`` alone means seq 0); a sort key for ids."""
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def id_before(entry_id: StreamId) -> str:
    """The id just before ``entry_id`` (a group created there reads ``entry_id`` next);
    ``0-0`` for ``0-0`` and ``0-1``."""
    ms, seq = parse_id(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    if ms > 0:
        return f"{ms - 1}-18446744073709551615"
    return ZERO_ID


def id_millis(entry_id: StreamId) -> int:
    """The unix time in ms of an id."""
    return parse_id(entry_id)[0]


def id_time(entry_id: Optional[StreamId]) -> Optional[datetime.datetime]:
    """When an entry was added, from its id, in UTC (None for no id)."""
    if not entry_id:
        return None
    return datetime.datetime.fromtimestamp(id_millis(entry_id) / 1000, tz=datetime.timezone.utc)


def datetime_to_id(moment: datetime.datetime) -> str:
    """``<unix ms>-0``: the first id at ``moment`` (a naive datetime is local time)."""
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return f"{max(int(moment.timestamp() * 1000), 0)}-0"


def since_to_id(since: Union[str, datetime.datetime, None], *, parse_text_dates: bool = False) -> Optional[str]:
    """``since`` as a stream id: a datetime becomes ``<unix ms>-0``; a stream id is kept
    (``0`` and ``$`` too); None stays None. With ``parse_text_dates``, an ISO 8601 string
    (``2024-05-01T10:00:00Z``; without a zone, local time) is read as a datetime.
    Raises ValueError for anything else (callers word it for their parameter)."""
    if since is None:
        return None
    if isinstance(since, datetime.datetime):
        return datetime_to_id(since)
    if not isinstance(since, str):
        raise ValueError(f"not a stream id or a datetime: {since!r}")
    text = since.strip() if parse_text_dates else since
    if text in ("0", "$") or looks_like_stream_id(text):
        return text
    if parse_text_dates:
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            return datetime_to_id(moment)
    raise ValueError(f"not a stream id or a datetime: {since!r}")
