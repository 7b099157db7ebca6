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
from typing import TYPE_CHECKING

import redis

from ..transport import TRANSIENT_ERRORS
from ..keys import is_replay_stream
from .state import Work

if TYPE_CHECKING:
    from ..listeners import Listener
    from .runner import Runner

logger = logging.getLogger("lightbus_sync.runner")

_CONSUMER_SWEEP_INTERVAL = 300.0


class Reclaimer:
    def __init__(self, runner: "Runner") -> None:
        self.runner = runner
        self._done = threading.Event()
        self._pass_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="lightbus-reclaimer", daemon=True)
        self._last_sweep = 0.0  # sweep on the first pass

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
        return min(self.runner.settings_of(l).effective_reclaim_interval for l in self.runner.listeners)

    def _sweep_interval(self) -> float:
        return min([_CONSUMER_SWEEP_INTERVAL] + [self.runner.settings_of(l).consumer_ttl for l in self.runner.listeners])

    def _run(self) -> None:
        runner = self.runner
        # Groups are created by the readers; scanning before they exist finds nothing.
        while not self._done.is_set() and not runner.wait_until_ready(0.2):
            pass
        while not self._done.is_set():
            try:
                self.renew_leases()
                with self._pass_lock:
                    if not runner.stopping.is_set() and all(r.drained.is_set() for r in runner.readers):
                        self.reclaim()
                        if time.monotonic() - self._last_sweep > self._sweep_interval():
                            self._last_sweep = 0.0  # sweep on the first pass
                            self.sweep_consumers()
            except TRANSIENT_ERRORS as exc:
                logger.warning("reclaim pass failed (%s: %s); retrying next interval", type(exc).__name__, exc)
            except redis.ResponseError as exc:
                logger.warning("reclaim pass refused by Redis: %s", exc)
            except Exception:
                logger.exception("reclaim pass failed unexpectedly")
            self._done.wait(self.interval())

    def renew_leases(self) -> None:
        runner = self.runner
        with runner.in_flight.lease_lock:
            for stream, group, ids in runner.in_flight.snapshot():
                listener = runner.listener_by_group(group)
                if listener is None:
                    continue
                renewed = set(runner.transport_of(listener).set_idle_if_owner(stream, group, runner.consumer_name, 0, ids))
                # Entries acked since the snapshot are not pending any more: not lost.
                lost = [i for i in ids if i not in renewed and runner.in_flight.holds(stream, group, i)]
                if lost:
                    runner.stats.add("leases_lost", len(lost))
                    logger.warning("%d in-flight entries of %s/%s are no longer ours (claimed elsewhere)",
                                   len(lost), stream, group)

    def reclaim(self) -> None:
        runner = self.runner
        for listener in runner.listeners:
            settings = runner.settings_of(listener)
            transport = runner.transport_of(listener)
            lane = runner.lane_of(listener)
            min_idle_ms = int(settings.acknowledgement_timeout * 1000)
            for stream in runner.streams_of(listener):
                cursor = "0-0"
                while not runner.stopping.is_set():
                    room = lane.room()
                    if room <= 0:
                        break  # the workers are full; stale entries wait for the next pass
                    cursor, entries, deleted, nils = transport.autoclaim(
                        stream, listener.group, runner.consumer_name, min_idle_ms, cursor,
                        min(settings.reclaim_batch_size, room),
                    )
                    if deleted:
                        runner.stats.add("lost", len(deleted))
                        logger.warning("%d pending entries of %s/%s were deleted before being handled: %s",
                                       len(deleted), stream, listener.group, b", ".join(deleted).decode())
                    if nils:
                        self._ack_deleted_pending(listener, stream)
                    if entries:
                        counts = transport.delivery_counts(stream, listener.group, [e[0] for e in entries])
                        runner.stats.add("reclaimed", len(entries))
                        runner.dispatch([
                            Work(listener, stream, entry_id, fields, counts.get(entry_id, (None, 1))[1])
                            for entry_id, fields in entries
                        ])
                    if cursor == "0-0":
                        break
            self._read_replays(listener)

    def _read_replays(self, listener: "Listener") -> None:
        """Take new entries of the listener's replay streams (dead letters replayed for its
        group alone), as much as the workers have room for."""
        runner = self.runner
        room = runner.lane_of(listener).room()
        replays = [s for s in runner.streams_of(listener) if is_replay_stream(s)]
        if room <= 0 or not replays or runner.stopping.is_set():
            return
        transport = runner.transport_of(listener)
        reply = transport.read_group(
            transport.client, listener.group, runner.consumer_name, {s: ">" for s in replays}, room, None
        )
        for stream, entries in reply:
            if entries:
                runner.dispatch([Work(listener, stream, entry_id, fields, 1) for entry_id, fields in entries])

    def _ack_deleted_pending(self, listener: "Listener", stream: str) -> None:
        """Redis 6.2: XAUTOCLAIM gave nil for deleted entries and left them pending, now
        ours. Find our pending entries that no longer exist and hand them on as lost."""
        runner = self.runner
        transport = runner.transport_of(listener)
        lost = []
        for row in transport.pending_of(stream, listener.group, runner.consumer_name, 1000):
            entry_id = row["message_id"]
            if runner.in_flight.holds(stream, listener.group, entry_id):
                continue
            if not transport.entry_exists(stream, entry_id):
                lost.append(Work(listener, stream, entry_id, None, row["times_delivered"]))
        runner.dispatch(lost)

    def sweep_consumers(self) -> None:
        """Delete consumers of our groups idle past ``consumer_ttl`` with nothing pending."""
        runner = self.runner
        for listener in runner.listeners:
            ttl_ms = runner.settings_of(listener).consumer_ttl * 1000
            transport = runner.transport_of(listener)
            for stream in runner.streams_of(listener):
                for consumer in transport.consumers(stream, listener.group):
                    name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
                    if name == runner.consumer_name or consumer.get("idle", 0) < ttl_ms:
                        continue
                    if consumer.get("pending", 0) == 0 and transport.delete_consumer_if_idle(stream, listener.group, name):
                        logger.info("deleted idle consumer %r of %s/%s", name, stream, listener.group)
