"""Reader threads: one per listener, reading its consumer group with XREADGROUP.

On start a reader creates its groups (at ``since`` or ``$``; an existing group is
kept), drains this consumer's own pending entries (id ``0``, left by an earlier run
with the same consumer name), then blocks on new entries (``>``). Connection loss,
timeouts and ``NOGROUP`` (Redis lost its data, the group or the stream was deleted) are
survived: it backs off, recreates a vanished group and goes on. It never busy-loops.
A refused password or user (a connection error no retry can fix) stops the runner
(``on_fatal``).

A group recreated after ``NOGROUP`` starts just before the oldest entry this runner
holds (fetched, not yet acked) on that stream, else just after the last entry it read
there, else (it read nothing there) at ``0``: it redelivers what this process holds and
what other processes of the group read after that point, not the whole stream.

On a Redis Cluster, a listener whose streams are in several hash slots (per-event
streams, or several APIs) has one read loop per slot, each in its own thread: one
XREADGROUP may only name streams of one slot, and a blocking read waits on one node.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

import redis

from ..clients import is_permanent
from ..transport import TRANSIENT_ERRORS, is_transient_reply
from ..backoff import Backoff
from ..keys import is_replay_stream
from ..stream_ids import ZERO_ID, id_before, parse_id
from .routes import Route
from .state import InFlight, Stats, Work

logger = logging.getLogger("lightbus_sync.runner")

_ROOM_POLL = 0.2  # seconds between checks for stopping while the workers are full


class Reader:
    """Reads one route's streams; hands what it reads to ``dispatch``; ends once
    ``stopping`` is set."""

    def __init__(
        self, route: Route, dispatch: Callable[[list[Work]], None], stopping: threading.Event, stats: Stats,
        in_flight: InFlight, on_fatal: Callable[[str], None],
    ) -> None:
        self.route = route
        self._in_flight = in_flight
        self._on_fatal = on_fatal
        #: stream -> the newest entry id read there (where a vanished group is recreated)
        self._last_read: dict[str, bytes] = {}
        self._last_read_lock = threading.Lock()
        self.listener = route.listener
        self.transport = route.transport
        self._dispatch = dispatch
        self._stopping = stopping
        self._stats = stats
        self.ready = threading.Event()
        #: Set once this consumer's own pending entries (left by an earlier run with the
        #: same name) have all been read; until then the reclaimer claims nothing, as
        #: entries it claimed would join our pending list and be read a second time.
        self.drained = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lightbus-reader-{route.name}", daemon=True)
        #: Read loops of the other hash slots (a Redis Cluster only); see _run.
        self._slot_threads: list[threading.Thread] = []
        self._undrained = 1
        self._drained_lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._thread.join(timeout)
        for thread in list(self._slot_threads):
            thread.join(max(deadline - time.monotonic(), 0))

    def _refused(self, exc: BaseException) -> None:
        """Redis refused the connection for good (``is_permanent``): stop the runner."""
        self._on_fatal(f"listener {self.listener.name!r}: Redis at {self.transport.safe_url} refused the "
                       f"connection ({type(exc).__name__}: {exc}): check the URL's user, password and TLS settings")

    def alive(self) -> bool:
        return self._thread.is_alive() and all(t.is_alive() for t in list(self._slot_threads))

    # --- the loop --------------------------------------------------------------------

    def _run(self) -> None:
        listener = self.listener
        settings = self.route.settings
        client = self.transport.reading_client(settings.block_ms)
        delay = Backoff(0.1, settings.consumption_restart_delay)
        while not self._stopping.is_set():
            try:
                self._ensure_groups(listener.since or "$")
                break
            except TRANSIENT_ERRORS + (redis.ResponseError,) as exc:
                if is_permanent(exc):
                    self._refused(exc)
                    return
                logger.warning("listener %r: cannot create consumer groups yet (%s: %s); retrying",
                               listener.name, type(exc).__name__, exc)
                self._stopping.wait(delay.next())
        # One read loop per hash slot (a Redis Cluster: see the module doc); on a single
        # Redis, one loop over every stream, in this thread.
        groups = self.transport.slot_groups(list(listener.streams))
        self._undrained = len(groups)
        for streams in groups[1:]:
            thread = threading.Thread(target=self._read, args=(client, streams, len(groups)),
                                      name=f"lightbus-reader-{listener.name}-{len(self._slot_threads) + 2}",
                                      daemon=True)
            self._slot_threads.append(thread)
            thread.start()
        self.ready.set()
        self._read(client, groups[0], len(groups))

    def _read(self, client: redis.Redis, streams: list[str], loops: int) -> None:
        """Read ``streams`` (one hash slot's, or all on a single Redis) until the runner
        stops; ``loops``: how many read loops share the listener's room."""
        listener = self.listener
        route = self.route
        settings = route.settings
        delay = Backoff(0.1, settings.consumption_restart_delay)
        lane = route.lane
        drained = False
        # Own pending entries first: read from id 0 upwards until none are left. (Replay
        # streams are read by the reclaimer: rare entries, kept off this hot path.)
        positions = {stream: "0" for stream in streams}
        while not self._stopping.is_set():
            # Fetch no more than the workers have room for (COUNT applies per stream).
            # Wait for room for a whole batch (half the lane if smaller): refilling it one
            # entry at a time would cost a wake-up and a round trip per entry.
            room = lane.wait_for_room(_ROOM_POLL, min(settings.batch_size * loops * len(positions), lane.capacity // 2))
            if room <= 0:
                continue
            count = max(min(settings.batch_size, room // loops) // len(positions), 1)
            modes = dict(positions)
            draining = any(p != ">" for p in modes.values())
            try:
                reply = self.transport.read_group(
                    client, listener.group, route.consumer, positions,
                    count, None if draining else settings.block_ms,
                )
            except TRANSIENT_ERRORS as exc:  # before ResponseError: some are replies (CLUSTERDOWN...)
                if is_permanent(exc):
                    self._refused(exc)
                    return
                logger.warning("listener %r: reading failed (%s: %s); reconnecting",
                               listener.name, type(exc).__name__, exc)
                self._stopping.wait(delay.next())
                continue
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self._heal_groups(delay)
                    continue
                if is_transient_reply(exc):  # e.g. UNBLOCKED: the node became a replica
                    logger.warning("listener %r: reading interrupted (%s); retrying", listener.name, exc)
                else:
                    logger.error("listener %r: Redis refused XREADGROUP: %s; retrying", listener.name, exc)
                self._stopping.wait(delay.next())
                continue
            delay.reset()
            returned = dict(reply)
            for stream in list(positions):
                if positions[stream] == ">":
                    continue
                entries = returned.get(stream) or []
                if not entries:
                    positions[stream] = ">"
                else:
                    positions[stream] = entries[-1][0].decode()
            if not drained and all(p == ">" for p in positions.values()):
                drained = True
                with self._drained_lock:
                    self._undrained -= 1
                    if self._undrained <= 0:
                        self.drained.set()
            works = []
            for stream, entries in reply:
                if not entries:
                    continue
                self._note_read(stream, entries[-1][0])
                counts = None
                if modes.get(stream, ">") != ">":  # own pending entries: delivered before
                    counts = self._delivery_counts(stream, entries)
                for entry_id, fields in entries:
                    delivery = counts.get(entry_id, 1) if counts is not None else 1
                    works.append(Work(route, stream, entry_id, fields, delivery))
            if works:
                self._dispatch(works)
                # Give the GIL to a worker woken for them now, rather than after the next
                # XREADGROUP is written: a lone event reaches its handler sooner.
                time.sleep(0)

    def _delivery_counts(self, stream: str, entries: list[tuple[bytes, Any]]) -> dict[bytes, int]:
        try:
            rows = self.transport.delivery_counts(stream, self.listener.group, [e[0] for e in entries])
        except TRANSIENT_ERRORS + (redis.ResponseError,):
            return {}
        return {entry_id: count for entry_id, (_, count) in rows.items()}

    def _note_read(self, stream: str, entry_id: bytes) -> None:
        with self._last_read_lock:
            last = self._last_read.get(stream)
            if last is None or parse_id(entry_id) > parse_id(last):
                self._last_read[stream] = entry_id

    def recreate_position(self, stream: str) -> str:
        """Where a vanished group is recreated on ``stream`` (see the module docs)."""
        oldest = self._in_flight.oldest(stream, self.listener.group)
        if oldest is not None:
            return id_before(oldest)
        with self._last_read_lock:
            last = self._last_read.get(stream)
        return last.decode() if last is not None else ZERO_ID

    def _ensure_groups(self, start_id: Optional[str]) -> None:
        """Create the groups that do not exist: at ``start_id``, or (None: recreating
        vanished ones) at ``recreate_position``. Replay streams are always read from 0."""
        for stream in self.route.streams:
            if is_replay_stream(stream):
                start = "0"  # every replay is for this group
            else:
                start = self.recreate_position(stream) if start_id is None else start_id
            if self.transport.ensure_group(stream, self.listener.group, start, self.route.consumer):
                if start_id is None:
                    logger.warning("listener %r: consumer group %r was missing on %s (Redis lost its data, or "
                                   "the group or the stream was deleted); recreated at %s", self.listener.name,
                                   self.listener.group, stream, start)
                else:
                    logger.info("created consumer group %r on %s at %s", self.listener.group, stream, start)

    def _heal_groups(self, delay: Backoff) -> None:
        while not self._stopping.is_set():
            try:
                self._ensure_groups(None)
                self._stats.add("groups_recreated")
                return
            except TRANSIENT_ERRORS + (redis.ResponseError,) as exc:
                logger.warning("listener %r: cannot recreate group (%s); retrying", self.listener.name, exc)
                self._stopping.wait(delay.next())
