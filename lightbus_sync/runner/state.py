"""Shared runner state: the unit of work, what is in flight, and counters."""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Iterator, Optional

import attrs

from ..observers import DeliveryInfo, Observer
from ..stream_ids import parse_id

if TYPE_CHECKING:
    from ..listeners import Listener
    from .routes import Route


@attrs.define(slots=True)
class Work:
    """One stream entry to handle on one route (one listener). ``fields`` is None or
    empty when the entry's data was trimmed or deleted while it was pending."""

    route: "Route"
    stream: str
    entry_id: bytes
    fields: Optional[dict[bytes, bytes]]
    delivery_count: int

    @property
    def listener(self) -> "Listener":
        return self.route.listener

    def delivery(self, api_name: str = "", event_name: str = "", event_id: str = "") -> DeliveryInfo:
        """What observers are told about this entry."""
        listener = self.route.listener
        return DeliveryInfo(
            listener.name, listener.group, self.stream, self.entry_id.decode(), self.delivery_count,
            api_name, event_name, event_id,
        )


class InFlight:
    """Entries this runner holds (queued or being handled) and has not yet acked or
    let go, per (stream, group). Their leases are renewed until they leave."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], set[bytes]] = {}
        self._lock = threading.Lock()
        #: Held while leases are renewed, and while entries are let go with a chosen idle
        #: time, so a renewal cannot reset the idle time of an entry just let go.
        self.lease_lock = threading.Lock()

    def add(self, stream: str, group: str, entry_id: bytes) -> bool:
        """Track an entry; False if it is already held (a duplicate read)."""
        with self._lock:
            held = self._entries.setdefault((stream, group), set())
            if entry_id in held:
                return False
            held.add(entry_id)
            return True

    def add_many(self, works: list["Work"]) -> list["Work"]:
        """Track entries (one lock for all); return those not already held, in order."""
        fresh = []
        with self._lock:
            entries = self._entries
            for work in works:
                key = (work.stream, work.route.group)
                held = entries.get(key)
                if held is None:
                    held = entries[key] = set()
                if work.entry_id not in held:
                    held.add(work.entry_id)
                    fresh.append(work)
        return fresh

    def discard(self, stream: str, group: str, entry_id: bytes) -> None:
        with self._lock:
            held = self._entries.get((stream, group))
            if held is not None:
                held.discard(entry_id)

    def discard_many(self, works: list["Work"]) -> None:
        """Stop tracking entries (one lock for all)."""
        with self._lock:
            entries = self._entries
            for work in works:
                held = entries.get((work.stream, work.route.group))
                if held is not None:
                    held.discard(work.entry_id)

    def holds(self, stream: str, group: str, entry_id: bytes) -> bool:
        with self._lock:
            return entry_id in self._entries.get((stream, group), ())

    def oldest(self, stream: str, group: str) -> Optional[bytes]:
        """The oldest entry held on (stream, group), None if none."""
        with self._lock:
            held = self._entries.get((stream, group))
            return min(held, key=parse_id) if held else None

    def snapshot(self) -> Iterator[tuple[str, str, list[bytes]]]:
        with self._lock:
            items = [(s, g, list(ids)) for (s, g), ids in self._entries.items() if ids]
        return iter(items)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self._entries.values())


class Stats(Observer):
    """Thread-safe counters of what the runner did. As an observer it counts
    ``retried``, ``dead_lettered``, ``reclaimed`` and ``lost`` entries (removed from a
    stream before the group read them, or while pending); the runner's parts add the
    others (``processed``/``failed`` handler calls, ``acked``, ``skipped``,
    ``given_back``, ``leases_lost``, ``groups_recreated``)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def on_retried(self, delivery: DeliveryInfo, delay: float) -> None:
        self.add("retried")

    def on_dead_lettered(self, delivery: DeliveryInfo, reason: str) -> None:
        self.add("dead_lettered")

    def on_reclaimed(self, delivery: DeliveryInfo) -> None:
        self.add("reclaimed")

    def on_lost(self, listener: str, stream: str, count: int) -> None:
        self.add("lost", count)
