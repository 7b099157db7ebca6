"""Loss detection: entries removed from a stream before a consumer group read them.

An entry is lost to a group when trimming (a producer's ``MAXLEN``, a hard cap, a trim
past a stale group) removed it while it was still after the group's last-delivered id.
Redis keeps no record of which entries went, so the count is worked out from what it
does keep:

- Redis 7+: ``XINFO STREAM`` gives ``entries-added`` (every entry ever added) and the
  length; with no ``XDEL`` inside the stream (``max-deleted-entry-id`` 0-0) the entries
  before the first one number ``entries-added - length``, and a group that has read
  ``entries-read`` of them lost the rest. A group that has read nothing (last-delivered
  ``0-0``) has read 0. The count is then exact.
- Otherwise (Redis 6.2, an ``XDEL`` in the stream, or ``entries-read`` unknown after
  ``XGROUP CREATE``/``SETID`` at an id other than 0): a group whose last-delivered id is
  older than the stream's first entry has lost at least one entry (``exact`` False).
  A 6.2 group that has read nothing cannot be judged (lost 0, ``exact`` False).

The figures describe the moment they are read: once the group reads past the gap, its
last-delivered id moves beyond it and the gap no longer shows. ``LossTracker`` turns
successive readings into new losses, so each is reported once per observer.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import attrs

from .stream_ids import ZERO_ID, as_text, parse_id


@attrs.frozen
class GroupLoss:
    """Entries of ``stream`` removed before ``group`` read them, as of one reading.

    ``lost`` is exact when ``exact`` is True, else a lower bound. ``last_delivered`` and
    ``first_id`` (None: the stream is empty) are the positions it was worked out from.
    """

    stream: str
    group: str
    lost: int
    exact: bool
    last_delivered: str
    first_id: Optional[str]


def detect_loss(transport: Any, stream: str, group: Optional[str] = None) -> dict[str, GroupLoss]:
    """group name -> GroupLoss for every group of ``stream`` (or only ``group``), from
    ``XINFO STREAM`` and ``XINFO GROUPS``. {} if the stream does not exist.
    ``transport`` is a RedisTransport (``stream_info``, ``stream_groups``)."""
    info = transport.stream_info(stream)
    if info is None:
        return {}
    groups = transport.stream_groups(stream)
    result: dict[str, GroupLoss] = {}
    for raw in groups:
        name = as_text(raw.get("name"))
        if group is not None and name != group:
            continue
        result[name] = group_loss(stream, info, raw)
    return result


def group_loss(stream: str, info: dict, raw_group: dict) -> GroupLoss:
    """One group's loss from an ``XINFO STREAM`` reply and its ``XINFO GROUPS`` row."""
    name = as_text(raw_group.get("name"))
    last_delivered = as_text(raw_group.get("last-delivered-id")) or ZERO_ID
    length = int(info.get("length") or 0)
    first = info.get("first-entry")
    first_id = as_text(first[0]) if first else None
    last_generated = as_text(info.get("last-generated-id")) or ZERO_ID
    if first_id is not None:
        behind = parse_id(last_delivered) < parse_id(first_id)
    else:  # empty: everything up to the last generated id is gone
        behind = parse_id(last_delivered) < parse_id(last_generated)

    def loss(lost: int, exact: bool) -> GroupLoss:
        return GroupLoss(stream, name, lost, exact, last_delivered, first_id)

    if not behind:
        return loss(0, True)
    entries_added = info.get("entries-added")
    entries_read = raw_group.get("entries-read")
    if entries_read is None and last_delivered == ZERO_ID and entries_added is not None:
        entries_read = 0
    no_deletions = as_text(info.get("max-deleted-entry-id") or ZERO_ID) == ZERO_ID
    if entries_added is not None and entries_read is not None and no_deletions:
        return loss(max(int(entries_added) - length - int(entries_read), 0), True)
    if last_delivered == ZERO_ID:
        return loss(0, False)  # Redis 6.2: nothing read yet, and nothing tells what went
    return loss(1, False)


@attrs.define
class LossTracker:
    """Turns successive ``GroupLoss`` readings into losses not yet reported.

    While a group's last-delivered id stays the same, its gap can only grow: only the
    growth is new. Once it moves, any gap is new.
    """

    _seen: dict[tuple[str, str], GroupLoss] = attrs.field(factory=dict)

    def new_losses(self, readings: Iterable[GroupLoss]) -> list[GroupLoss]:
        """The part of each reading not reported before (readings with nothing new are
        left out); remembers the readings."""
        fresh = []
        for reading in readings:
            key = (reading.stream, reading.group)
            before = self._seen.get(key)
            self._seen[key] = reading
            lost = reading.lost
            if before is not None and before.last_delivered == reading.last_delivered:
                lost -= before.lost
            if lost > 0:
                fresh.append(attrs.evolve(reading, lost=lost))
        return fresh
