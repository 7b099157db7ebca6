"""Worker threads: a lane is a queue and the threads that drain it.

The runner has one shared lane (``threads`` workers) plus one lane per listener that
asks for its own ``concurrency``. A lane with one thread handles its entries strictly
in the order they were read.

Flow control: a lane holds at most ``size + prefetch`` entries (being handled or
waiting). Readers and the reclaimer ask ``room()`` before fetching from Redis and
fetch no more than that, so ``put()`` never blocks and every entry fetched is tracked
(and its lease renewed) from the moment it arrives.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

logger = logging.getLogger("lightbus_sync.runner")

_STOP = object()


#: An entry queued on a lane (the runner queues ``state.Work``).
Work = Any


class Lane:
    """``size`` worker threads running ``handle(work)`` for each queued entry."""

    def __init__(self, name: str, size: int, prefetch: int, handle: Callable[[Work], None]) -> None:
        self.name = name
        self.size = size
        self.capacity = size + max(prefetch, 0)
        self._queue: "queue.SimpleQueue[object]" = queue.SimpleQueue()
        self._handle = handle
        self._threads: list[threading.Thread] = []
        # Entries held = queued (counted by putters, under the lock) - handled (counted
        # by each worker in its own slot: one writer each, so no lock per entry).
        self._queued = 0
        self._handled = [0] * size
        self._room_changed = threading.Condition()
        #: Room that the threads waiting in wait_for_room() want (the smallest); workers
        #: wake them only once there is that much, not after every entry.
        self._wanted: list[int] = []

    def start(self) -> None:
        for index in range(self.size):
            thread = threading.Thread(
                target=self._work, args=(index,), name=f"lightbus-worker-{self.name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _held(self) -> int:
        """Entries put and not yet handled."""
        return self._queued - sum(self._handled)

    def room(self) -> int:
        """How many more entries the lane takes before it is full."""
        with self._room_changed:
            return self.capacity - self._held()

    def wait_for_room(self, timeout: float, wanted: int = 1) -> int:
        """Wait up to ``timeout`` seconds for the lane to have room for ``wanted`` entries
        (at most its capacity); return the room (it may be less after the timeout)."""
        wanted = max(min(wanted, self.capacity), 1)
        with self._room_changed:
            if self.capacity - self._held() >= wanted:
                return self.capacity - self._held()
            # Registered before wait_for checks again: a worker that finishes after that
            # check sees it, and notifies once this thread waits (it needs the lock).
            self._wanted.append(wanted)
            try:
                self._room_changed.wait_for(lambda: self.capacity - self._held() >= wanted, timeout)
            finally:
                self._wanted.remove(wanted)
            return self.capacity - self._held()

    def put(self, work: Work) -> None:
        """Queue an entry (never blocks: callers fetch no more than ``room()``)."""
        self.put_many([work])

    def put_many(self, works: list[Work]) -> None:
        """Queue entries in order (never blocks: callers fetch no more than ``room()``)."""
        with self._room_changed:
            self._queued += len(works)
        put = self._queue.put
        for work in works:
            put(work)

    def _work(self, index: int) -> None:
        handled = self._handled
        wanted = self._wanted
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._handle(item)
            except BaseException:  # the runner's handle never raises; this is a last guard
                logger.exception("worker %s: unexpected error", self.name)
            finally:
                handled[index] += 1
                if wanted:
                    with self._room_changed:
                        if wanted and self.capacity - self._held() >= min(wanted):
                            self._room_changed.notify_all()

    def stop(self, deadline: float) -> tuple[bool, list[Work]]:
        """Take back the entries no worker has started, let the workers finish what they
        are handling, then end them. Returns (all ended before ``deadline``, the entries
        taken back)."""
        unstarted: list[Work] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                unstarted.append(item)
        with self._room_changed:
            self._queued -= len(unstarted)
            self._room_changed.notify_all()
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))
        return not any(t.is_alive() for t in self._threads), unstarted

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)
