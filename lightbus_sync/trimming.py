"""Safe trimming: a stream keeps every entry that a live consumer group still needs.

A group needs everything from its oldest pending entry on, or, with nothing pending,
everything after its last-delivered id. The stream's trim point is the oldest such
position over its groups (``XTRIM MINID`` keeps entries at or after it, so the
last-delivered entry itself stays: on Redis 6.2 that is what tells a trimmed-but-read
gap from a loss). A group none of whose consumers has been active for ``group_ttl``
seconds is stale: it stops holding the trim point back, and a WARNING names it.

On Redis 8.2+ the trim is ``XTRIM ... ACKED`` whenever no group is stale: the server
then also refuses to remove an entry some group has not acknowledged, which closes the
gap between reading the groups and trimming (a group created meanwhile at an older id).
``ACKED`` trims are exact (``=``): Redis 8.2 removes nothing for an approximate
(``~``) ``ACKED`` trim, measured on 8.2.3.
Past a stale group the trim is a plain ``MINID`` (``KEEPREF``: the stale group's pending
references stay, and show as deleted entries if it ever comes back).

Reading the groups costs ``XINFO GROUPS`` plus, per group, ``XINFO CONSUMERS`` and (if it
has pending entries) ``XPENDING``: a runner trims each stream at most once every
``trim_interval`` seconds (``upkeep.StreamUpkeep``).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import attrs

from .stream_ids import ZERO_ID, as_text, parse_id

logger = logging.getLogger(__name__)

#: Seconds without an active consumer after which a group stops holding back trimming.
DEFAULT_GROUP_TTL = 24 * 3600.0
#: Seconds between two trims of one stream by a runner.
DEFAULT_TRIM_INTERVAL = 5.0
#: First Redis version whose XTRIM takes ACKED.
ACKED_SINCE = (8, 2)


@attrs.frozen
class GroupHold:
    """What one group needs kept: everything from ``needs_from`` on.

    ``reason`` is ``"pending"`` (its oldest pending entry) or ``"last-delivered"``.
    ``idle`` is the seconds since its most recently active consumer was active (None: it
    has no consumers, which counts as live). ``stale``: idle for longer than group_ttl.
    """

    group: str
    needs_from: str
    reason: str
    idle: Optional[float]
    stale: bool


@attrs.frozen
class TrimPoint:
    """Where ``stream`` may be trimmed: entries before ``min_id`` no live group needs.

    ``min_id`` is None when nothing may be trimmed: the stream has no groups, or every
    group is stale (nothing is known to be unneeded). ``held_by`` names the group whose
    need sets ``min_id``.
    """

    stream: str
    min_id: Optional[str]
    held_by: Optional[str]
    groups: tuple[GroupHold, ...]

    @property
    def stale_groups(self) -> tuple[str, ...]:
        return tuple(hold.group for hold in self.groups if hold.stale)

    @property
    def holder(self) -> Optional[GroupHold]:
        return next((hold for hold in self.groups if hold.group == self.held_by), None)


@attrs.frozen
class TrimResult:
    """One trim: the point used, the entries removed, and whether ``ACKED`` guarded it."""

    point: TrimPoint
    removed: int
    acked: bool


def group_needs_from(transport: Any, stream: str, raw_group: dict[str, Any]) -> tuple[str, str]:
    """(the oldest id the group may still be given, why): its oldest pending entry
    (``"pending"``, from the ``XPENDING`` summary), else its last-delivered id
    (``"last-delivered"``), from its ``XINFO GROUPS`` row."""
    if int(raw_group.get("pending") or 0):
        oldest = transport.pending_summary(stream, as_text(raw_group.get("name"))).get("min")
        if oldest:
            return as_text(oldest), "pending"
    return as_text(raw_group.get("last-delivered-id")) or ZERO_ID, "last-delivered"


def redelivery_floor(transport: Any, stream: str, group: str) -> Optional[str]:
    """The lowest entry id ``group`` may still be given from ``stream`` (see
    ``group_needs_from``); None when the group or the stream does not exist."""
    for raw in transport.stream_groups(stream):
        if as_text(raw.get("name")) == group:
            return group_needs_from(transport, stream, raw)[0]
    return None


def group_hold(transport: Any, stream: str, raw_group: dict[str, Any], group_ttl: float) -> GroupHold:
    """One group's hold, from its ``XINFO GROUPS`` row (plus ``XINFO CONSUMERS`` and,
    with pending entries, the ``XPENDING`` summary)."""
    name = as_text(raw_group.get("name"))
    needs_from, reason = group_needs_from(transport, stream, raw_group)
    idle_ms: Optional[int] = None
    for consumer in transport.consumers(stream, name):
        # idle: since its last read or claim attempt (a read that found nothing counts), so
        # a running consumer of a quiet stream stays live.
        value = int(consumer.get("idle") or 0)
        idle_ms = value if idle_ms is None else min(idle_ms, value)
    idle = None if idle_ms is None else idle_ms / 1000
    return GroupHold(name, needs_from, reason, idle, idle is not None and idle > group_ttl)


def trim_point(transport: Any, stream: str, group_ttl: float = DEFAULT_GROUP_TTL) -> TrimPoint:
    """The trim point of ``stream`` now (reads only; see the module docstring).
    ``transport`` is a RedisTransport."""
    if group_ttl <= 0:
        raise ValueError(f"group_ttl must be > 0 seconds, got {group_ttl!r}")
    holds = tuple(group_hold(transport, stream, raw, group_ttl) for raw in transport.stream_groups(stream))
    live = [hold for hold in holds if not hold.stale]
    if not live:
        return TrimPoint(stream, None, None, holds)
    oldest = min(live, key=lambda hold: parse_id(hold.needs_from))
    return TrimPoint(stream, oldest.needs_from, oldest.group, holds)


class Trimmer:
    """Trims streams to their trim point (one caller at a time: the runner's keeper).

    ``approximate`` trims whole radix-tree nodes only (``MINID ~``, cheap; up to one node
    of entries, 100 by default, may stay beyond the point until a later trim).
    """

    def __init__(self, transport: Any, *, group_ttl: float = DEFAULT_GROUP_TTL, approximate: bool = True) -> None:
        if group_ttl <= 0:
            raise ValueError(f"group_ttl must be > 0 seconds, got {group_ttl!r}")
        self._transport = transport
        self.group_ttl = group_ttl
        self.approximate = approximate
        self._warned_stale: dict[str, tuple[str, ...]] = {}
        self._acked: Optional[bool] = None

    def trim(self, stream: str) -> TrimResult:
        """Trim ``stream`` to its trim point now; WARNING (once per change) naming the
        stale groups it trims past. Redis errors propagate."""
        point = trim_point(self._transport, stream, self.group_ttl)
        stale = point.stale_groups
        if stale and self._warned_stale.get(stream) != stale:
            logger.warning(
                "%s: consumer group(s) %s had no active consumer for over %gs (group_ttl): they no "
                "longer hold back trimming, so entries they have not read may be removed",
                stream, ", ".join(repr(g) for g in stale), self.group_ttl,
            )
        self._warned_stale[stream] = stale
        if point.min_id is None or point.min_id == ZERO_ID:
            return TrimResult(point, 0, False)
        acked = not stale and self._server_has_acked()
        approximate = self.approximate and not acked  # Redis 8.2 ignores "~ ... ACKED"
        removed = self._transport.trim_stream(stream, point.min_id, acked=acked, approximate=approximate)
        if removed:
            logger.debug("%s: trimmed %d entries before %s (held by group %r)", stream, removed,
                         point.min_id, point.held_by)
        return TrimResult(point, removed, acked)

    def _server_has_acked(self) -> bool:
        if self._acked is None:
            self._acked = tuple(self._transport.server_version()[:2]) >= ACKED_SINCE
        return self._acked
