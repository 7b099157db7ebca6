"""The dead-letter record: what a ``{<stream>}:dead`` entry holds, written by the runner
and read by ``lightbus_sync.ops.dead_letters``.

An entry holds the ``dl:*`` metadata fields first, in ``METADATA_NAMES`` order, then the
original entry's fields verbatim, in order. Reading takes the leading run of ``dl:``
fields (each name once; it stops at the first other field, or once every name was
seen) as metadata and everything after it as the original fields, so an original
field that happens to start with ``dl:`` survives.
"""

from __future__ import annotations

import datetime
from typing import Any, Mapping, Optional, Sequence, Union

FIELD_PREFIX = "dl:"
_FIELD_PREFIX_BYTES = FIELD_PREFIX.encode()
#: The metadata fields, in the order they are written (without the ``dl:`` prefix).
METADATA_NAMES = (
    "original_id", "stream", "group", "listener", "consumer", "delivery_count",
    "reason", "error_type", "error", "event_id", "time",
)
#: Longer error texts are cut to this many characters (and end with ``...``).
MAX_ERROR_TEXT = 2000


def encode_dead_letter(
    *,
    original_id: Union[str, bytes],
    stream: str,
    group: str,
    listener: str,
    consumer: str,
    delivery_count: int,
    reason: str,
    error_type: str,
    error: str,
    event_id: str,
    original_fields: Optional[Mapping[Any, Any]],
    now: Optional[datetime.datetime] = None,
) -> list[Any]:
    """The flat field list (name, value, name, value...) of a dead-letter entry."""
    if len(error) > MAX_ERROR_TEXT:
        error = error[:MAX_ERROR_TEXT] + "..."
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    values = (
        original_id, stream, group, listener, consumer, str(delivery_count),
        reason, error_type, error, event_id, moment.isoformat(),
    )
    fields: list[Any] = []
    for name, value in zip(METADATA_NAMES, values):
        fields += [FIELD_PREFIX + name, value]
    for name, value in (original_fields or {}).items():
        fields += [name, value]
    return fields


def split_dead_letter(pairs: Sequence[tuple[bytes, bytes]]) -> tuple[dict[str, str], list[tuple[bytes, bytes]]]:
    """(metadata without the prefix, the original fields as pairs) of a dead-letter entry
    given as ``(name, value)`` pairs in stream order."""
    metadata: dict[str, str] = {}
    index = 0
    while index < len(pairs) and len(metadata) < len(METADATA_NAMES):
        name, value = pairs[index]
        if not bytes(name).startswith(_FIELD_PREFIX_BYTES):
            break
        key = _text(bytes(name)[len(_FIELD_PREFIX_BYTES):])
        if key in metadata:
            break
        metadata[key] = _text(value)
        index += 1
    return metadata, [(bytes(k), bytes(v)) for k, v in pairs[index:]]


def metadata_time(metadata: Mapping[str, str]) -> Optional[datetime.datetime]:
    """The ``dl:time`` moment, or None when absent or unreadable."""
    try:
        return datetime.datetime.fromisoformat(metadata["time"]) if metadata.get("time") else None
    except ValueError:
        return None


def metadata_delivery_count(metadata: Mapping[str, str]) -> Optional[int]:
    """The ``dl:delivery_count``, or None when absent or unreadable."""
    try:
        return int(metadata["delivery_count"])
    except (KeyError, ValueError):
        return None


def _text(value: Union[str, bytes, None]) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
