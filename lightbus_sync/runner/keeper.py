"""The keeper: a runner thread that reports entries lost to the runner's groups and
keeps their streams trimmed (see lightbus_sync.upkeep), every ``trim_interval``.

``check_now()`` runs one full pass at once: the runner calls it before its readers
start, so a gap left while the service was down is reported before reading moves past
it. Redis being away only delays a pass (a WARNING, then the next interval).
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable

import redis

from ..loss import GroupLoss
from ..observers import Observer
from ..transport import TRANSIENT_ERRORS
from ..trimming import Trimmer
from ..upkeep import StreamUpkeep
from .routes import Route

logger = logging.getLogger("lightbus_sync.runner")


class Keeper:
    """Upkeep of the event streams of ``routes`` (one ``StreamUpkeep`` per Redis)."""

    def __init__(self, routes: Iterable[Route], stopping: threading.Event, observers: Observer) -> None:
        self._stopping = stopping
        self._observers = observers
        by_transport: dict[int, list[Route]] = {}
        for route in routes:
            by_transport.setdefault(id(route.transport), []).append(route)
        self._upkeeps: list[StreamUpkeep] = []
        self._listener_of: dict[tuple[str, str], str] = {}
        intervals = []
        for group in by_transport.values():
            transport = group[0].transport
            groups: dict[str, set[str]] = {}
            for route in group:
                for stream in route.event_streams:
                    groups.setdefault(stream, set()).add(route.group)
                    self._listener_of[(stream, route.group)] = route.name
            interval = min(route.settings.trim_interval for route in group)
            group_ttl = min(route.settings.group_ttl for route in group)
            intervals.append(interval)
            self._upkeeps.append(StreamUpkeep(
                transport, groups, trimmer=Trimmer(transport, group_ttl=group_ttl),
                on_lost=self._lost, interval=interval,
            ))
        self._interval = min(intervals) if intervals else 5.0
        self._thread = threading.Thread(target=self._run, name="lightbus-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def check_now(self) -> None:
        """One pass over every stream, now (errors are logged, not raised)."""
        self._pass(force=True)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self._pass(force=False)

    def _pass(self, force: bool) -> None:
        for upkeep in self._upkeeps:
            try:
                upkeep.run(force=force)
            except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
                logger.warning("could not check or trim streams (%s: %s); will retry", type(exc).__name__, exc)
            except Exception:  # never let the thread die: trimming waits, nothing is lost
                logger.exception("checking or trimming streams failed; will retry")

    def _lost(self, loss: GroupLoss) -> None:
        listener = self._listener_of.get((loss.stream, loss.group), "")
        self._observers.on_lost(listener, loss.stream, loss.lost)
