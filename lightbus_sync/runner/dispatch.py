"""Dispatching: fetched entries enter the runner here, from the readers and the reclaimer."""

from __future__ import annotations

import threading

from .settler import Settler
from .state import InFlight, Work


class Dispatcher:
    """Tracks fetched entries (their leases are renewed from then on) and queues them on
    their route's lane. An entry already held (fetched twice) is not queued again;
    entries fetched while the runner stops are given back at once."""

    def __init__(self, in_flight: InFlight, stopping: threading.Event, settler: Settler) -> None:
        self._in_flight = in_flight
        self._stopping = stopping
        self._settler = settler

    def __call__(self, works: list[Work]) -> None:
        if not works:
            return
        fresh = self._in_flight.add_many(works)
        if self._stopping.is_set():
            self._settler.give_back(fresh)
            return
        lane = fresh[0].route.lane if fresh else None
        if all(work.route.lane is lane for work in fresh):  # the usual case: one reader's batch
            if lane is not None:
                lane.put_many(fresh)
            return
        for work in fresh:
            work.route.lane.put(work)
