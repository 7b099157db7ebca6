"""``lightbus-sync status``: streams, consumer groups, consumers and dead letters.

For each stream: length, first and last entry (times from the ids), dead-letter count
(``XLEN {stream}:dead``). For each consumer group (``XINFO GROUPS``): its consumers
(``XINFO CONSUMERS``: pending, idle, and ``inactive`` from Redis 7.2), pending count,
the oldest pending entry (``XPENDING`` summary gives the lowest pending id, an
``XPENDING`` range on that id gives how long since it was last delivered: its "age"
here; its age since it was added comes from its id), the lag (``XINFO GROUPS`` ``lag``,
Redis >= 7; None = unknown, never 0), and its dead letters (counted from the dead-letter
stream's ``dl:group`` field while that stream is small), and how many replayed dead
letters wait in its replay stream ``{stream}:replay:<group>`` (see ops.dead_letters).

Per group, the entries it lost (removed before it read them: ``loss.group_loss``, from the
replies above) and, per stream, what holds its trim point (``trimming.trim_point``: the
group whose oldest pending or last-delivered entry is oldest; stale groups do not count).

``check_status()`` fails on any loss, and applies thresholds: lag (Redis's, else counted in Redis up to the
threshold), pending entries idle longer than a maximum (``XPENDING IDLE``, so any
pending entry counts, not only the lowest), and dead letters. Ages are measured with
the Redis server's clock (``TIME``).
"""

from __future__ import annotations

import datetime
from typing import Any, Iterable, Optional

import attrs

from ..loss import group_loss
from ..trimming import DEFAULT_GROUP_TTL, trim_point
from .formatting import duration, iso, table, time_and_age
from ..keys import dead_letter_stream, replay_stream
from ..stream_ids import id_millis, id_time
from ..transport import RedisTransport
from .replication import ReplicationStatus, render_replication, replica_problems, replication_status
from .streams import Source, StreamTarget, all_transports, bus_streams, text

#: Count dead letters per group only while the dead-letter stream is at most this long.
GROUP_DEAD_LETTER_SCAN_LIMIT = 10_000
#: Entries counted per script call when Redis gives no lag.
_LAG_COUNT_CHUNK = 10_000


@attrs.define
class ConsumerStatus:
    name: str
    pending: int
    idle: float  # seconds since its last read/claim
    inactive: Optional[float]  # seconds since its last successful read (Redis >= 7.2), else None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class GroupStatus:
    name: str
    consumers: list[ConsumerStatus]
    pending: int
    last_delivered_id: Optional[str]
    entries_read: Optional[int]
    lag: Optional[int]  # None: unknown (Redis < 7, or Redis reports none)
    oldest_pending_id: Optional[str]
    oldest_pending_age: Optional[float]  # seconds since the oldest pending entry was last delivered
    oldest_pending_entry_age: Optional[float]  # seconds since it was added to the stream
    oldest_pending_consumer: Optional[str]
    oldest_pending_deliveries: Optional[int]
    dead_letters: Optional[int]  # of this group; None when not counted (large dead-letter stream)
    replays: int = 0  # entries in {stream}:replay:<group> (replayed dead letters, see ops.dead_letters)
    lost: int = 0  # entries removed before the group read them (a lower bound unless lost_exact)
    lost_exact: bool = True

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["consumers"] = [c.as_dict() for c in self.consumers]
        return data


@attrs.define
class StreamStatus:
    stream: str
    api_name: str
    event_name: Optional[str]
    redis: str  # the redacted URL
    exists: bool
    length: int
    first_id: Optional[str]
    last_id: Optional[str]
    first_time: Optional[datetime.datetime]
    last_time: Optional[datetime.datetime]
    dead_letter_stream: str
    dead_letters: int
    groups: list[GroupStatus]
    server_time: float
    transport: Any = attrs.field(repr=False, eq=False, default=None)
    #: entries before this id no live group needs (None: nothing may be trimmed)
    trim_point: Optional[str] = None
    #: the group holding the trim point, and why: "pending" or "last-delivered"
    trim_held_by: Optional[str] = None
    trim_reason: Optional[str] = None
    #: groups with no active consumer for group_ttl: they do not hold the trim point
    stale_groups: list[str] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "api_name": self.api_name,
            "event_name": self.event_name,
            "redis": self.redis,
            "exists": self.exists,
            "length": self.length,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "first_time": iso(self.first_time),
            "last_time": iso(self.last_time),
            "dead_letter_stream": self.dead_letter_stream,
            "dead_letters": self.dead_letters,
            "groups": [g.as_dict() for g in self.groups],
            "trim_point": self.trim_point,
            "trim_held_by": self.trim_held_by,
            "trim_reason": self.trim_reason,
            "stale_groups": self.stale_groups,
        }


@attrs.define
class BusStatus:
    streams: list[StreamStatus]
    time: datetime.datetime
    #: per Sentinel URL of the bus: its primary and replicas (see ops.replication)
    replication: list[ReplicationStatus] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        data = {"time": iso(self.time), "streams": [s.as_dict() for s in self.streams]}
        if self.replication:
            data["replication"] = [r.as_dict() for r in self.replication]
        return data


@attrs.frozen
class Problem:
    """A threshold exceeded: ``kind`` is ``lag``, ``pending_age`` or ``dead_letters``; or
    ``lost``: a group lost entries (removed before it read them); or, with
    ``max_replica_lag``, ``replica_lag`` / ``replica_down`` (``stream`` is then the
    Sentinel service name and ``group`` the replica's address, None for the primary)."""

    kind: str
    stream: str
    group: Optional[str]
    value: Any
    limit: Any
    message: str

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


# --- collecting ------------------------------------------------------------------------


def collect_status(
    source: Source, apis: Iterable[str] = (), *, include_local: bool = True, discover: bool = False
) -> BusStatus:
    """The status of the streams of the bus's local APIs and listeners (with
    ``include_local``) and of ``apis`` (names, or ``api.event``); with ``discover``, also of
    every event stream on the Redis server(s) (``discovered_streams``); for Sentinel URLs, the primary and
    its replicas too."""
    targets = bus_streams(source, apis, include_local=include_local, discover=discover)
    streams = [stream_status(target, _group_ttl(source, target.api_name)) for target in targets]
    now = max((s.server_time for s in streams), default=None)
    moment = datetime.datetime.fromtimestamp(now, datetime.timezone.utc) if now else datetime.datetime.now(datetime.timezone.utc)
    replication = replication_status([*all_transports(source), *(s.transport for s in streams)])
    return BusStatus(streams, moment, replication)


def _group_ttl(source: Source, api_name: str) -> float:
    config = getattr(source, "config", None)
    if config is None:  # a RedisTransport: no API configuration
        return DEFAULT_GROUP_TTL
    try:
        return float(config.api(api_name).redis.group_ttl)
    except AttributeError:
        return DEFAULT_GROUP_TTL


def stream_status(target: StreamTarget, group_ttl: float = DEFAULT_GROUP_TTL) -> StreamStatus:
    """One stream's status; ``group_ttl``: the API's (which groups are stale)."""
    transport = target.transport
    now = transport.server_time()
    info = transport.stream_info(target.stream)
    dead_stream = dead_letter_stream(target.stream)
    dead_count = transport.stream_length(dead_stream)
    first_id = last_id = None
    length = 0
    if info is not None:
        length = int(info.get("length", 0))
        first = info.get("first-entry")
        last = info.get("last-entry")
        first_id = text(first[0]) if first else None
        last_id = text(last[0]) if last else None
    per_group_dead = _dead_letters_by_group(transport, dead_stream, dead_count)
    groups = []
    if info is not None:
        for raw in transport.stream_groups(target.stream):
            group = _group_status(transport, target.stream, raw, now, per_group_dead)
            loss = group_loss(target.stream, info, raw)
            group.lost, group.lost_exact = loss.lost, loss.exact
            groups.append(group)
    groups.sort(key=lambda g: g.name)
    point = trim_point(transport, target.stream, group_ttl) if info is not None else None
    holder = point.holder if point is not None else None
    return StreamStatus(
        stream=target.stream, api_name=target.api_name, event_name=target.event_name,
        redis=transport.safe_url, exists=info is not None, length=length,
        first_id=first_id, last_id=last_id, first_time=id_time(first_id), last_time=id_time(last_id),
        dead_letter_stream=dead_stream, dead_letters=dead_count, groups=groups,
        server_time=now, transport=transport,
        trim_point=point.min_id if point else None, trim_held_by=point.held_by if point else None,
        trim_reason=holder.reason if holder else None, stale_groups=list(point.stale_groups) if point else [],
    )


def _group_status(
    transport: RedisTransport, stream: str, raw: dict[str, Any], now: float, per_group_dead: Optional[dict[str, int]]
) -> GroupStatus:
    name = text(raw["name"])
    consumers = []
    for consumer in transport.consumers(stream, name):
        inactive = consumer.get("inactive")
        consumers.append(ConsumerStatus(
            name=text(consumer["name"]),
            pending=int(consumer.get("pending", 0)),
            idle=int(consumer.get("idle", 0)) / 1000,
            inactive=None if inactive is None or int(inactive) < 0 else int(inactive) / 1000,
        ))
    consumers.sort(key=lambda c: c.name)
    pending = int(raw.get("pending", 0))
    oldest_id = oldest_age = oldest_entry_age = oldest_consumer = oldest_deliveries = None
    if pending:
        summary = transport.pending_summary(stream, name)
        low = summary.get("min")
        if low:
            oldest_id = text(low)
            oldest_entry_age = max(now - id_millis(oldest_id) / 1000, 0.0)
            rows = transport.pending_entries(stream, name, oldest_id, oldest_id, 1)
            if rows:
                oldest_age = int(rows[0]["time_since_delivered"]) / 1000
                oldest_consumer = text(rows[0]["consumer"])
                oldest_deliveries = int(rows[0]["times_delivered"])
    lag = raw.get("lag")
    entries_read = raw.get("entries-read")
    dead = None
    if per_group_dead is not None:
        dead = per_group_dead.get(name, 0)
    return GroupStatus(
        name=name, consumers=consumers, pending=pending,
        last_delivered_id=text(raw.get("last-delivered-id")) or None,
        entries_read=None if entries_read is None else int(entries_read),
        lag=None if lag is None else int(lag),
        oldest_pending_id=oldest_id, oldest_pending_age=oldest_age, oldest_pending_entry_age=oldest_entry_age,
        oldest_pending_consumer=oldest_consumer, oldest_pending_deliveries=oldest_deliveries,
        dead_letters=dead,
        replays=transport.stream_length(replay_stream(stream, name)),
    )


def _dead_letters_by_group(transport: RedisTransport, dead_stream: str, count: int) -> Optional[dict[str, int]]:
    """group -> dead letters, from the ``dl:group`` fields; None if the stream is too long."""
    if count > GROUP_DEAD_LETTER_SCAN_LIMIT:
        return None
    counts: dict[str, int] = {}
    start = "-"
    while True:
        batch = transport.stream_entries(dead_stream, start, "+", 1000)
        for _, pairs in batch:
            group = next((text(v) for k, v in pairs if k == b"dl:group"), "")
            counts[group] = counts.get(group, 0) + 1
        if len(batch) < 1000:
            return counts
        start = "(" + text(batch[-1][0])


# --- checking --------------------------------------------------------------------------


def check_status(
    status: BusStatus,
    *,
    max_lag: Optional[int] = None,
    max_pending_age: Optional[float] = None,
    max_dead_letters: Optional[int] = None,
    max_replica_lag: Optional[float] = None,
) -> list[Problem]:
    """Thresholds exceeded, one ``Problem`` each; [] when all is well.

    - lost: any group that lost entries (always checked).
    - lag: Redis's lag; where Redis gives none, the entries after the group's last
      delivered id are counted in Redis, up to ``max_lag + 1``.
    - pending age: any pending entry not delivered for longer than ``max_pending_age``
      seconds (``XPENDING IDLE``). Set it above the acknowledgement timeout: entries
      waiting for a retry are idle up to that long by design.
    - dead letters: more than ``max_dead_letters`` in a stream's dead-letter stream.
    - replicas (Sentinel URLs): the primary unreachable, a replica the sentinels know
      that is not ``online`` at the primary, or one whose last acknowledgement is more
      than ``max_replica_lag`` seconds old (``ops.replication.replica_problems``).
    """
    problems: list[Problem] = []
    if max_replica_lag is not None:
        for replication in status.replication:
            for kind, address, value, message in replica_problems(replication, max_replica_lag):
                problems.append(Problem(kind, replication.service_name, address, value, max_replica_lag, message))
    for stream in status.streams:
        transport = stream.transport
        if max_dead_letters is not None and stream.dead_letters > max_dead_letters:
            problems.append(Problem(
                "dead_letters", stream.stream, None, stream.dead_letters, max_dead_letters,
                f"{stream.stream}: {stream.dead_letters} dead letter(s) in {stream.dead_letter_stream} "
                f"(max {max_dead_letters})",
            ))
        for group in stream.groups:
            if group.lost:
                count = f"{group.lost}" if group.lost_exact else f"at least {group.lost}"
                problems.append(Problem(
                    "lost", stream.stream, group.name, group.lost, 0,
                    f"{stream.stream} group {group.name}: lost {count} entr{'y' if group.lost == 1 else 'ies'} "
                    f"(removed from the stream before the group read them)",
                ))
            if max_lag is not None:
                problem = _check_lag(transport, stream, group, max_lag)
                if problem is not None:
                    problems.append(problem)
            if max_pending_age is not None and group.pending:
                problem = _check_pending_age(transport, stream, group, max_pending_age)
                if problem is not None:
                    problems.append(problem)
    return problems


def _check_lag(transport: RedisTransport, stream: StreamStatus, group: GroupStatus, max_lag: int) -> Optional[Problem]:
    if group.lag is not None:
        if group.lag > max_lag:
            return Problem("lag", stream.stream, group.name, group.lag, max_lag,
                           f"{stream.stream} group {group.name}: lag {group.lag} > {max_lag}")
        return None
    counted = 0
    after = group.last_delivered_id or "0-0"
    while counted <= max_lag:
        chunk = min(_LAG_COUNT_CHUNK, max_lag + 1 - counted)
        count, last = transport.count_entries_after(stream.stream, after, chunk)
        counted += count
        if count < chunk or last is None:
            break
        after = last
    if counted > max_lag:
        return Problem("lag", stream.stream, group.name, f">{max_lag}", max_lag,
                       f"{stream.stream} group {group.name}: lag > {max_lag} "
                       f"(counted: Redis reports no lag for this group)")
    return None


def _check_pending_age(transport: RedisTransport, stream: StreamStatus, group: GroupStatus, max_age: float) -> Optional[Problem]:
    min_idle_ms = int(max_age * 1000) + 1
    rows = transport.pending_entries(stream.stream, group.name, "-", "+", 10, min_idle_ms=min_idle_ms)
    if not rows:
        return None
    oldest = max(rows, key=lambda r: int(r["time_since_delivered"]))
    idle = int(oldest["time_since_delivered"]) / 1000
    many = "10+" if len(rows) >= 10 else str(len(rows))
    return Problem(
        "pending_age", stream.stream, group.name, idle, max_age,
        f"{stream.stream} group {group.name}: {many} pending entr{'y' if len(rows) == 1 else 'ies'} "
        f"not delivered for over {duration(max_age)} (e.g. {text(oldest['message_id'])}: "
        f"{duration(idle)}, consumer {text(oldest['consumer'])}, {_deliveries(int(oldest['times_delivered']))})",
    )


def _deliveries(count: int) -> str:
    return f"{count} deliver{'y' if count == 1 else 'ies'}"


# --- rendering -------------------------------------------------------------------------


def render_status(status: BusStatus) -> str:
    """Aligned tables: the primary and replicas of Sentinel URLs, streams, consumer
    groups, consumers."""
    if status.replication:
        return "\n\n".join([render_replication(status.replication), _render_streams(status)])
    return _render_streams(status)


def _render_streams(status: BusStatus) -> str:
    if not status.streams:
        return "no streams (no local APIs or listeners in the bus module; name some with --api)"
    now = status.time.timestamp()
    several_servers = len({s.redis for s in status.streams}) > 1
    stream_rows = []
    for s in status.streams:
        row = [s.stream, s.api_name, s.length if s.exists else "(none)",
               time_and_age(s.first_time, now), time_and_age(s.last_time, now), s.dead_letters,
               _trim_holder(s)]
        if several_servers:
            row.insert(1, s.redis)
        stream_rows.append(row)
    headers = ["STREAM", "API", "LENGTH", "FIRST ENTRY", "LAST ENTRY", "DEAD LETTERS", "TRIM POINT HELD BY"]
    right = [2, 5]
    if several_servers:
        headers.insert(1, "REDIS")
        right = [3, 6]
    parts = [table(headers, stream_rows, right=right)]

    group_rows = []
    consumer_rows = []
    show_inactive = any(c.inactive is not None for s in status.streams for g in s.groups for c in g.consumers)
    show_replays = any(g.replays for s in status.streams for g in s.groups)
    for s in status.streams:
        for g in s.groups:
            group_rows.append([
                s.stream, g.name, len(g.consumers), g.pending,
                duration(g.oldest_pending_age) if g.oldest_pending_id else "-",
                g.oldest_pending_id or "-",
                "unknown" if g.lag is None else g.lag,
                g.lost if g.lost_exact or not g.lost else f">={g.lost}",
                "?" if g.dead_letters is None else g.dead_letters,
            ] + ([g.replays] if show_replays else []))
            for c in g.consumers:
                row = [s.stream, g.name, c.name, c.pending, duration(c.idle)]
                if show_inactive:
                    row.append(duration(c.inactive))
                consumer_rows.append(row)
    if group_rows:
        headers = ["STREAM", "GROUP", "CONSUMERS", "PENDING", "OLDEST PENDING", "OLDEST ID", "LAG", "LOST",
                   "DEAD LETTERS"]
        parts.append(table(headers + (["REPLAYS"] if show_replays else []), group_rows, right=[2, 3, 4, 6, 7, 8, 9]))
    else:
        parts.append("no consumer groups")
    if consumer_rows:
        headers = ["STREAM", "GROUP", "CONSUMER", "PENDING", "IDLE"] + (["INACTIVE"] if show_inactive else [])
        parts.append(table(headers, consumer_rows, right=[3, 4, 5]))
    return "\n\n".join(parts)


def _trim_holder(s: StreamStatus) -> str:
    """``billing (pending 1700000000000-0)``, plus any stale groups; ``-`` for none."""
    if s.trim_held_by is None:
        text_ = "-" if not s.stale_groups else "nothing (every group is stale)"
    else:
        text_ = f"{s.trim_held_by} ({s.trim_reason} {s.trim_point})"
    if s.stale_groups:
        text_ += f"; stale: {', '.join(s.stale_groups)}"
    return text_


def render_problems(problems: list[Problem]) -> str:
    if not problems:
        return "check: OK"
    return "\n".join(["check: FAILED"] + [f"  {p.message}" for p in problems])
