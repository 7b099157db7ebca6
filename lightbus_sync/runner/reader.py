"""Reader threads: one per listener, reading its consumer group with XREADGROUP.

On start a reader creates its groups (at ``since`` or ``$``; an existing group is
kept), drains this consumer's own pending entries (id ``0``, left by an earlier run
with the same consumer name), then blocks on new entries (``>``). Connection loss,
timeouts and ``NOGROUP`` (Redis lost its data) are survived: it backs off, recreates
groups at ``0`` when they vanished, and goes on. It never busy-loops.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import redis

from ..transport import TRANSIENT_ERRORS
from .replay import is_replay_stream
from .state import Work

if TYPE_CHECKING:
    from ..listeners import Listener
    from .runner import Runner

logger = logging.getLogger("lightbus_sync.runner")

_ROOM_POLL = 0.2  # seconds between checks for stopping while the workers are full


class Reader:
    def __init__(self, runner: "Runner", listener: "Listener") -> None:
        self.runner = runner
        self.listener = listener
        self.transport = runner.transport_of(listener)
        self.ready = threading.Event()
        #: Set once this consumer's own pending entries (left by an earlier run with the
        #: same name) have all been read; until then the reclaimer claims nothing, as
        #: entries it claimed would join our pending list and be read a second time.
        self.drained = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lightbus-reader-{listener.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the loop --------------------------------------------------------------------

    def _run(self) -> None:
        runner = self.runner
        listener = self.listener
        settings = runner.settings_of(listener)
        client = self.transport.reading_client(settings.block_ms)
        delay = _Backoff(settings.consumption_restart_delay)
        while not runner.stopping.is_set():
            try:
                self._ensure_groups(listener.since or "$")
                break
            except TRANSIENT_ERRORS + (redis.ResponseError,) as exc:
                logger.warning("listener %r: cannot create consumer groups yet (%s: %s); retrying",
                               listener.name, type(exc).__name__, exc)
                runner.stopping.wait(delay.next())
        self.ready.set()
        lane = runner.lane_of(listener)
        # Own pending entries first: read from id 0 upwards until none are left.
        positions = {stream: "0" for stream in runner.streams_of(listener)}
        while not runner.stopping.is_set():
            # Fetch no more than the workers have room for (COUNT applies per stream).
            room = lane.wait_for_room(_ROOM_POLL)
            if room <= 0:
                continue
            count = max(min(settings.batch_size, room) // len(positions), 1)
            modes = dict(positions)
            draining = any(p != ">" for p in modes.values())
            try:
                reply = self.transport.read_group(
                    client, listener.group, runner.consumer_name, positions,
                    count, None if draining else settings.block_ms,
                )
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    logger.warning("listener %r: consumer group missing (Redis lost its data?); "
                                   "recreating it at the start of the stream", listener.name)
                    self._heal_groups(delay)
                    continue
                logger.error("listener %r: Redis refused XREADGROUP: %s; retrying", listener.name, exc)
                runner.stopping.wait(delay.next())
                continue
            except TRANSIENT_ERRORS as exc:
                logger.warning("listener %r: reading failed (%s: %s); reconnecting",
                               listener.name, type(exc).__name__, exc)
                runner.stopping.wait(delay.next())
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
            if not self.drained.is_set() and all(p == ">" for p in positions.values()):
                self.drained.set()
            works = []
            for stream, entries in reply:
                if not entries:
                    continue
                counts = None
                if modes.get(stream, ">") != ">":  # own pending entries: delivered before
                    counts = self._delivery_counts(stream, entries)
                for entry_id, fields in entries:
                    delivery = counts.get(entry_id, 1) if counts is not None else 1
                    works.append(Work(listener, stream, entry_id, fields, delivery))
            runner.dispatch(works)

    def _delivery_counts(self, stream: str, entries: list) -> dict[bytes, int]:
        try:
            rows = self.transport.delivery_counts(stream, self.listener.group, [e[0] for e in entries])
        except TRANSIENT_ERRORS + (redis.ResponseError,):
            return {}
        return {entry_id: count for entry_id, (_, count) in rows.items()}

    def _ensure_groups(self, start_id: str) -> None:
        for stream in self.runner.streams_of(self.listener):
            start = "0" if is_replay_stream(stream) else start_id  # every replay is for this group
            if self.transport.ensure_group(stream, self.listener.group, start):
                logger.info("created consumer group %r on %s at %s", self.listener.group, stream, start)

    def _heal_groups(self, delay: "_Backoff") -> None:
        while not self.runner.stopping.is_set():
            try:
                self._ensure_groups("0")
                self.runner.stats.add("groups_recreated")
                return
            except TRANSIENT_ERRORS + (redis.ResponseError,) as exc:
                logger.warning("listener %r: cannot recreate group (%s); retrying", self.listener.name, exc)
                self.runner.stopping.wait(delay.next())


class _Backoff:
    """Delays for reconnect attempts: 0.1 s doubling up to ``limit`` (at least 0.1 s)."""

    def __init__(self, limit: float) -> None:
        self._limit = max(limit, 0.1)
        self._delay = 0.1

    def next(self) -> float:
        delay = self._delay
        self._delay = min(self._delay * 2, self._limit)
        return delay

    def reset(self) -> None:
        self._delay = 0.1
