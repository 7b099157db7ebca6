"""Lag of every consumer group, sampled on a thread while the dashboard runs.

Each sample is one ``collect`` call (the same status query the pages make); every
group's lag (None when Redis reports none) is kept with the time, up to ``keep``
samples per group, oldest dropped first. A failed sample (Redis away) is logged and
skipped; the thread goes on.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Deque, Optional

from ..ops.status import BusStatus

logger = logging.getLogger("lightbus_sync.dashboard")

SeriesKey = tuple[str, str, str]  # (redacted Redis URL, stream, group)


class LagSampler:
    """Samples ``collect()`` every ``interval`` seconds between ``start()`` and ``stop()``."""

    def __init__(self, collect: Callable[[], BusStatus], *, interval: float = 5.0, keep: int = 720) -> None:
        if interval <= 0:
            raise ValueError(f"interval: expected seconds > 0, got {interval!r}")
        if keep < 2:
            raise ValueError(f"keep: expected at least 2 samples, got {keep!r}")
        self._collect = collect
        self.interval = interval
        self._keep = keep
        self._series: dict[SeriesKey, Deque[tuple[float, Optional[int]]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def sample(self) -> None:
        """Take one sample now."""
        status = self._collect()
        moment = time.time()
        with self._lock:
            for stream in status.streams:
                for group in stream.groups:
                    key = (stream.redis, stream.stream, group.name)
                    series = self._series.get(key)
                    if series is None:
                        series = self._series[key] = collections.deque(maxlen=self._keep)
                    series.append((moment, group.lag))

    def series(self, redis: str, stream: str, group: str) -> list[tuple[float, Optional[int]]]:
        """(time, lag) samples of one group, oldest first."""
        with self._lock:
            return list(self._series.get((redis, stream, group), ()))

    def start(self) -> "LagSampler":
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="lightbus-dashboard-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # Redis away: keep sampling
                logger.warning("lag sample failed: %s: %s", type(exc).__name__, exc)
            self._stop.wait(self.interval)
