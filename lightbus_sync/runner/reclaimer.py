"""The reclaimer thread: takes over stale pending entries and keeps our own alive.

Every ``reclaim_interval`` it
- renews the lease of entries this runner holds (owner-checked ``XCLAIM ... IDLE 0
  JUSTID``), so a slow handler is never mistaken for a dead one;
- scans each group with ``XAUTOCLAIM`` (cursor to ``0-0``) for entries idle longer than
  ``acknowledgement_timeout``: a dead consumer's entries, and failed entries whose retry
  backoff has passed (a failure sets the entry's idle time so that it becomes
  claimable exactly when its backoff ends; the schedule lives in Redis). It claims no
  more than the listener's workers have room for, and never waits for room;
- takes new entries of each group's replay streams (dead letters replayed for it alone);
- now and then deletes consumers idle past ``consumer_ttl`` that hold no pending entries.

It claims nothing before the readers have read this consumer's own pending entries
(claimed entries join that list). While the runner drains on stop it keeps renewing
leases (handlers still running must not be claimed elsewhere) but claims nothing new.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import redis

from ..keys import attempts_key, retry_mark_field
from ..observers import Observer
from ..transport import TRANSIENT_ERRORS
from .routes import Route, RouteTable
from .state import InFlight, Stats, Work

logger = logging.getLogger("lightbus_sync.runner")

_CONSUMER_SWEEP_INTERVAL = 300.0


class Reclaimer:
    """The reclaimer thread over ``routes``. ``ready(timeout)`` tells whether the
    readers have created their groups, ``drained()`` whether they have read this
    consumer's own pending entries; ``dispatch`` takes what is claimed."""

    def __init__(
        self,
        routes: RouteTable,
        in_flight: InFlight,
        dispatch: Callable[[list[Work]], None],
        stopping: threading.Event,
        stats: Stats,
        observers: Observer,
        ready: Callable[[float], bool],
        drained: Callable[[], bool],
    ) -> None:
        self._routes = routes
        self._in_flight = in_flight
        self._dispatch = dispatch
        self._stopping = stopping
        self._stats = stats
        self._observers = observers
        self._ready = ready
        self._drained = drained
        self._done = threading.Event()
        self._pass_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="lightbus-reclaimer", daemon=True)
        self._last_sweep = 0.0  # sweep on the first pass
        #: How many idle-consumer sweeps ran.
        self.sweeps = 0

    def start(self) -> None:
        self._thread.start()

    def finish_pass(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for a reclaim pass in progress; the runner is stopping,
        so no further pass starts."""
        if self._pass_lock.acquire(timeout=max(timeout, 0)):
            self._pass_lock.release()

    def stop(self, timeout: float) -> None:
        """Stop renewing leases and end the thread."""
        self._done.set()
        self._thread.join(max(timeout, 0))

    def alive(self) -> bool:
        return self._thread.is_alive()

    def interval(self) -> float:
        return min(route.settings.effective_reclaim_interval for route in self._routes)

    def _sweep_interval(self) -> float:
        return min([_CONSUMER_SWEEP_INTERVAL] + [route.settings.consumer_ttl for route in self._routes])

    def _run(self) -> None:
        # Groups are created by the readers; scanning before they exist finds nothing.
        while not self._done.is_set() and not self._ready(0.2):
            pass
        while not self._done.is_set():
            try:
                self.run_pass()
            except TRANSIENT_ERRORS as exc:
                logger.warning("reclaim pass failed (%s: %s); retrying next interval", type(exc).__name__, exc)
            except redis.ResponseError as exc:
                logger.warning("reclaim pass refused by Redis: %s", exc)
            except Exception:
                logger.exception("reclaim pass failed unexpectedly")
            self._done.wait(self.interval())

    def run_pass(self) -> None:
        """One pass: renew leases; unless stopping or still draining, reclaim, and sweep
        idle consumers if the sweep interval has passed since the last sweep."""
        self.renew_leases()
        with self._pass_lock:
            if not self._stopping.is_set() and self._drained():
                self.reclaim()
                if time.monotonic() - self._last_sweep > self._sweep_interval():
                    self._last_sweep = time.monotonic()
                    self.sweeps += 1
                    self.sweep_consumers()

    def renew_leases(self) -> None:
        in_flight = self._in_flight
        with in_flight.lease_lock:
            for stream, group, ids in in_flight.snapshot():
                route = self._routes.by_group(group)
                if route is None:
                    continue
                renewed = set(route.transport.set_idle_if_owner(stream, group, route.consumer, 0, ids))
                # Entries acked since the snapshot are not pending any more: not lost.
                lost = [i for i in ids if i not in renewed and in_flight.holds(stream, group, i)]
                if lost:
                    self._stats.add("leases_lost", len(lost))
                    logger.warning("%d in-flight entries of %s/%s are no longer ours (claimed elsewhere)",
                                   len(lost), stream, group)

    def reclaim(self) -> None:
        for route in self._routes:
            settings = route.settings
            transport = route.transport
            lane = route.lane
            min_idle_ms = int(settings.acknowledgement_timeout * 1000)
            for stream in route.streams:
                cursor = "0-0"
                while not self._stopping.is_set():
                    room = lane.room()
                    if room <= 0:
                        break  # the workers are full; stale entries wait for the next pass
                    cursor, entries, deleted, nils = transport.autoclaim(
                        stream, route.group, route.consumer, min_idle_ms, cursor,
                        min(settings.reclaim_batch_size, room),
                    )
                    if deleted:
                        self._stats.add("lost", len(deleted))
                        logger.warning("%d pending entries of %s/%s were deleted before being handled: %s",
                                       len(deleted), stream, route.group, b", ".join(deleted).decode())
                    if nils:
                        self._ack_deleted_pending(route, stream)
                    if entries:
                        counts = transport.delivery_counts(stream, route.group, [e[0] for e in entries])
                        works = [
                            Work(route, stream, entry_id, fields, counts.get(entry_id, (None, 1))[1])
                            for entry_id, fields in entries
                        ]
                        self._report_reclaims(route, stream, works)
                        self._dispatch(works)
                    if cursor == "0-0":
                        break
            self._read_replays(route)

    def _report_reclaims(self, route: Route, stream: str, works: list[Work]) -> None:
        """Tell observers of the claimed entries that were not scheduled retries (a
        retry leaves a mark, taken here)."""
        fields = [retry_mark_field(stream, route.group, w.entry_id) for w in works]
        try:
            retries = route.transport.take_marks(attempts_key(stream), fields)
        except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
            logger.debug("could not read the retry marks of %s (%s)", stream, exc)
            retries = [False] * len(works)
        for work, retry in zip(works, retries):
            if not retry:
                self._observers.on_reclaimed(work.delivery())

    def _read_replays(self, route: Route) -> None:
        """Take new entries of the route's replay streams (dead letters replayed for its
        group alone), as much as the workers have room for."""
        room = route.lane.room()
        replays = route.replay_streams
        if room <= 0 or not replays or self._stopping.is_set():
            return
        transport = route.transport
        reply = transport.read_group(
            transport.client, route.group, route.consumer, {s: ">" for s in replays}, room, None
        )
        for stream, entries in reply:
            if entries:
                self._dispatch([Work(route, stream, entry_id, fields, 1) for entry_id, fields in entries])

    def _ack_deleted_pending(self, route: Route, stream: str) -> None:
        """Redis 6.2: XAUTOCLAIM gave nil for deleted entries and left them pending, now
        ours. Find our pending entries that no longer exist and hand them on as lost."""
        transport = route.transport
        lost = []
        for row in transport.pending_of(stream, route.group, route.consumer, 1000):
            entry_id = row["message_id"]
            if self._in_flight.holds(stream, route.group, entry_id):
                continue
            if not transport.entry_exists(stream, entry_id):
                lost.append(Work(route, stream, entry_id, None, row["times_delivered"]))
        self._dispatch(lost)

    def sweep_consumers(self) -> None:
        """Delete consumers of our groups idle past ``consumer_ttl`` with nothing pending."""
        for route in self._routes:
            ttl_ms = route.settings.consumer_ttl * 1000
            transport = route.transport
            for stream in route.streams:
                for consumer in transport.consumers(stream, route.group):
                    name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
                    if name == route.consumer or consumer.get("idle", 0) < ttl_ms:
                        continue
                    if consumer.get("pending", 0) == 0 and transport.delete_consumer_if_idle(stream, route.group, name):
                        logger.info("deleted idle consumer %r of %s/%s", name, stream, route.group)
