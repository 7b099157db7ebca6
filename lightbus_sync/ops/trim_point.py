"""Where a stream could be trimmed without losing an entry a group still needs.

Each consumer group still needs its oldest pending entry (delivered, not acked) and
everything after it; a group with nothing pending needs what comes after its
last-delivered id. The stream's trim point is the oldest such position over all its
groups, and the group with that position is the one holding it. A stream without
groups has no trim point (nothing is needed by anyone). Computed from a
``StreamStatus``: no Redis command of its own.
"""

from __future__ import annotations

from typing import Optional

import attrs

from .status import GroupStatus, StreamStatus


@attrs.frozen
class TrimPoint:
    """``entry_id``: entries older than it are needed by no group. ``group`` holds it,
    because of its oldest ``pending`` entry or its ``last-delivered`` position."""

    entry_id: str
    group: str
    because: str  # "pending" or "last-delivered"


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def group_position(group: GroupStatus) -> tuple[str, str]:
    """(oldest id the group still needs, why): its oldest pending entry, else its
    last-delivered id (``0-0`` when it has read nothing)."""
    if group.oldest_pending_id:
        return group.oldest_pending_id, "pending"
    return group.last_delivered_id or "0-0", "last-delivered"


def trim_point(stream: StreamStatus) -> Optional[TrimPoint]:
    """The stream's trim point and the group holding it; None without groups. Ties go
    to the group whose name sorts first."""
    best: Optional[TrimPoint] = None
    for group in sorted(stream.groups, key=lambda g: g.name):
        entry_id, because = group_position(group)
        if best is None or _id_key(entry_id) < _id_key(best.entry_id):
            best = TrimPoint(entry_id, group.name, because)
    return best
