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
        add = self._in_flight.add
        fresh = [w for w in works if add(w.stream, w.route.group, w.entry_id)]
        if self._stopping.is_set():
            self._settler.give_back(fresh)
            return
        for work in fresh:
            work.route.lane.put(work)
