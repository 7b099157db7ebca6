"""Backoff: the delays between attempts, for every retry loop in the package.

``Backoff(first, limit)`` gives ``first``, then doubles up to ``limit``; ``reset()``
after a success. With ``jitter=True`` each delay is scaled by a random factor in
[0.5, 1] (so that many clients retrying at once spread out).
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, first: float, limit: float, *, jitter: bool = False) -> float:
    """The delay after the ``attempt``-th failure (1 for the first): ``first * 2**(attempt-1)``,
    capped at ``limit``, with jitter if asked."""
    delay = min(limit, first * (2 ** max(attempt - 1, 0)))
    return delay * (0.5 + random.random() / 2) if jitter else delay


class Backoff:
    """Successive delays: ``first``, doubling up to ``limit`` (``limit`` below ``first``
    is raised to it). Not thread-safe: one per retry loop."""

    def __init__(self, first: float, limit: float, *, jitter: bool = False) -> None:
        self._first = first
        self._limit = max(limit, first)
        self._jitter = jitter
        self._delay = first

    def next(self) -> float:
        """The delay to wait now; the following one doubles (up to the limit)."""
        delay = self._delay
        self._delay = min(self._delay * 2, self._limit)
        return delay * (0.5 + random.random() / 2) if self._jitter else delay

    def reset(self) -> None:
        """Start again from ``first`` (after a success)."""
        self._delay = self._first
