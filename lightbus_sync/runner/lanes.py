"""Worker threads: a lane is a bounded queue and the threads that drain it.

The runner has one shared lane (``threads`` workers) plus one lane per listener that
asks for its own ``concurrency``. A lane with one thread handles its entries strictly
in the order they were read.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Optional

from .state import Work

logger = logging.getLogger("lightbus_sync.runner")

_STOP = object()


class Lane:
    """``size`` worker threads running ``handle(work)`` for each queued Work.

    ``put()`` blocks while ``capacity`` entries wait: that bound keeps memory flat
    however long the backlog on Redis is.
    """

    def __init__(self, name: str, size: int, capacity: int, handle: Callable[[Work], None]) -> None:
        self.name = name
        self.size = size
        self._queue: "queue.Queue[object]" = queue.Queue(maxsize=max(capacity, 1))
        self._handle = handle
        self._threads: list[threading.Thread] = []
        self.busy = 0
        self._busy_lock = threading.Lock()

    def start(self) -> None:
        for index in range(self.size):
            thread = threading.Thread(
                target=self._work, name=f"lightbus-worker-{self.name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def put(self, work: Work) -> None:
        self._queue.put(work)

    def queued(self) -> int:
        return self._queue.qsize()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            with self._busy_lock:
                self.busy += 1
            try:
                self._handle(item)  # type: ignore[arg-type]
            except BaseException:  # processing never raises; this is a last guard
                logger.exception("worker %s: unexpected error; the entry stays pending", self.name)
            finally:
                with self._busy_lock:
                    self.busy -= 1

    def stop(self, deadline: float) -> bool:
        """Let the workers finish what is queued, then end them; True if all ended
        before ``deadline`` (a ``time.monotonic()`` value)."""
        for _ in self._threads:
            while True:
                try:
                    self._queue.put(_STOP, timeout=max(deadline - time.monotonic(), 0.01))
                    break
                except queue.Full:
                    if time.monotonic() >= deadline:
                        return False
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))
        return not any(t.is_alive() for t in self._threads)

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def drop_queued(self) -> int:
        """Forget queued entries (after a failed drain); they stay pending on Redis."""
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return dropped
            if item is not _STOP:
                dropped += 1
