"""``lightbus-sync status`` for Sentinel URLs: the primary the sentinels name, and how
far behind each replica is.

For each distinct ``redis+sentinel://`` URL of the bus: the service name, the primary
(as the sentinels name it), how many of the URL's sentinels answer, the primary's
replication offset (``INFO replication`` ``master_repl_offset``) and, per replica the
primary knows, its state, offset, how many bytes it is behind the primary, and its lag
(seconds since the replica last acknowledged, as the primary reports it). Replicas
the sentinels know (``SENTINEL REPLICAS``) that the primary does not list are shown as
``not connected``, with the sentinels' flags. A write is safe from a failover once
enough replicas are past it: see ``min_replicas``. ``lightbus-sync status --check
--max-replica-lag`` fails on a replica that is not ``online`` or lags more
(``ops.status.check_status``).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import attrs
import redis

from .formatting import table


@attrs.define
class ReplicaStatus:
    address: str  # host:port
    state: str  # online, wait_bgsave, send_bulk...; "not connected" (known to the sentinels only)
    offset: Optional[int]  # None when not connected
    behind_bytes: Optional[int]  # the primary's offset minus the replica's
    lag: Optional[int]  # seconds since its last acknowledgement, as the primary reports it
    #: the sentinels' flags for it (``s_down``, ``disconnected``...), when not connected
    sentinel_flags: list[str] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class ReplicationStatus:
    redis: str  # the redacted URL
    service_name: str
    primary: Optional[str]  # host:port; None when no sentinel names a primary that is up
    sentinels: int
    sentinels_up: int
    primary_offset: Optional[int] = None
    replicas: list[ReplicaStatus] = attrs.Factory(list)
    error: Optional[str] = None  # why the primary could not be reached

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["replicas"] = [r.as_dict() for r in self.replicas]
        return data


def replication_status(transports: Iterable[Any]) -> list[ReplicationStatus]:
    """One ``ReplicationStatus`` per distinct transport whose URL is a Sentinel URL."""
    seen: set[str] = set()
    found = []
    for transport in transports:
        if transport.url in seen:
            continue
        seen.add(transport.url)
        status = _one(transport)
        if status is not None:
            found.append(status)
    return found


def _one(transport: Any) -> Optional[ReplicationStatus]:
    view = transport.sentinel_view()
    if view is None:
        return None
    if view["primary"] is None:
        return ReplicationStatus(transport.safe_url, view["service_name"], None, view["sentinels"],
                                 view["sentinels_up"], error=view["error"])
    host, port = view["primary"]
    status = ReplicationStatus(transport.safe_url, view["service_name"], f"{host}:{port}", view["sentinels"],
                               view["sentinels_up"])
    try:
        info = transport.replication_info()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        status.error = f"{type(exc).__name__}: {exc}"
        return status
    offset = int(info.get("master_repl_offset", 0))
    status.primary_offset = offset
    for key in sorted(k for k in info if k.startswith("slave") and isinstance(info[k], dict)):
        replica = info[key]
        replica_offset = int(replica.get("offset", 0))
        lag = replica.get("lag")
        status.replicas.append(ReplicaStatus(
            address=f"{replica.get('ip')}:{replica.get('port')}", state=str(replica.get("state", "?")),
            offset=replica_offset, behind_bytes=max(offset - replica_offset, 0),
            lag=None if lag is None else int(lag),
        ))
    connected = {r.address for r in status.replicas}
    for known in view.get("known_replicas") or []:
        if known["address"] not in connected:
            flags = sorted(f for f in known["flags"] if f != "slave")
            status.replicas.append(ReplicaStatus(known["address"], "not connected", None, None, None, flags))
    return status


def render_replication(statuses: list[ReplicationStatus]) -> str:
    """One table: a row for each primary, then one for each of its replicas."""
    rows: list[list[object]] = []
    for s in statuses:
        sentinels = f"{s.sentinels_up}/{s.sentinels} up"
        if s.primary is None or s.error:
            rows.append([s.service_name, "primary", s.primary or "unknown", f"unreachable: {s.error}", "-", "-", "-",
                         sentinels])
            continue
        rows.append([s.service_name, "primary", s.primary, "-", s.primary_offset, "-", "-", sentinels])
        for r in s.replicas:
            state = f"{r.state} ({','.join(r.sentinel_flags)})" if r.sentinel_flags else r.state
            rows.append([s.service_name, "replica", r.address, state, _or_dash(r.offset), _or_dash(r.behind_bytes),
                         "?" if r.lag is None else f"{r.lag}s", ""])
        if not s.replicas:
            rows.append([s.service_name, "replica", "(none connected)", "-", "-", "-", "-", ""])
    headers = ["SENTINEL SERVICE", "ROLE", "ADDRESS", "STATE", "OFFSET", "BEHIND (BYTES)", "LAG", "SENTINELS"]
    return table(headers, rows, right=[4, 5, 6])


def _or_dash(value: Optional[int]) -> object:
    return "-" if value is None else value


def replica_problems(status: ReplicationStatus, max_lag: float) -> list[tuple[str, Optional[str], Any, str]]:
    """What ``--max-replica-lag`` fails on, as (kind, replica address, value, message):
    ``replica_down`` for the primary unreachable, or a replica not ``online`` (not
    connected, or still syncing); ``replica_lag`` for a replica whose last
    acknowledgement is more than ``max_lag`` seconds old."""
    name = status.service_name
    if status.primary is None or status.error:
        return [("replica_down", None, None, f"sentinel service {name}: the primary is unreachable ({status.error})")]
    found: list[tuple[str, Optional[str], Any, str]] = []
    if not status.replicas:
        found.append(("replica_down", None, 0, f"sentinel service {name}: no replica connected to the primary"))
    for r in status.replicas:
        if r.state != "online":
            flags = f", sentinels: {','.join(r.sentinel_flags)}" if r.sentinel_flags else ""
            found.append(("replica_down", r.address, r.state,
                          f"sentinel service {name}: replica {r.address} is {r.state}{flags}"))
        elif r.lag is None or r.lag > max_lag:
            lag = "unknown" if r.lag is None else f"{r.lag}s"
            found.append(("replica_lag", r.address, r.lag,
                          f"sentinel service {name}: replica {r.address} lag {lag} > {max_lag:g}s "
                          f"(since its last acknowledgement; {r.behind_bytes} bytes behind)"))
    return found
