"""The acker thread: acknowledges handled entries in pipelined batches.

An entry leaves the runner's in-flight set only once Redis has its XACK; while Redis
is away the acks wait here and are retried, and the entries' leases keep being renewed.
Once stopped, the acker sends nothing more: no attempt starts after the stop deadline
(or after ``stop()`` was called, if that is later), so entries ``stop()`` reports
unacked stay pending even if Redis comes back a moment later.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from typing import Optional

import redis

from ..backoff import Backoff
from ..keys import attempts_field, attempts_key, is_replay_stream
from ..transport import TRANSIENT_ERRORS, RedisTransport
from .state import InFlight, Stats, Work

logger = logging.getLogger("lightbus_sync.runner")

_STOP = object()
_MAX_BATCH = 2000


class Acker:
    """Acks entries of any route (each on its route's transport); an entry leaves
    ``in_flight`` once acked."""

    def __init__(self, in_flight: InFlight, stats: Stats) -> None:
        self._in_flight = in_flight
        self._stats = stats
        self._queue: "queue.SimpleQueue[object]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="lightbus-acker", daemon=True)
        self._deadline: Optional[float] = None
        self._stop_requested = threading.Event()  # cuts short a wait between attempts

    def start(self) -> None:
        self._thread.start()

    def ack(self, work: Work) -> None:
        """Queue ``work``'s entry for XACK (returns at once)."""
        self._queue.put(work)

    def ack_now(self, work: Work) -> None:
        """Ack ``work``'s entry from the calling thread, before returning (queued for the
        acker thread instead if Redis is away)."""
        if not self._send([work]):
            self.ack(work)

    def stop(self, deadline: float) -> bool:
        """Ack everything queued (retrying until ``deadline``), then end; True if all acked."""
        self._deadline = deadline
        self._queue.put(_STOP)
        self._stop_requested.set()
        self._thread.join(max(deadline - time.monotonic(), 0) + 0.5)
        return not self._thread.is_alive() and self._unacked == 0

    def alive(self) -> bool:
        return self._thread.is_alive()

    _unacked = 0

    def _run(self) -> None:
        batch: list[Work] = []
        stopping = False
        delay = Backoff(0.05, 1.0)
        while True:
            if not batch and not stopping:
                item = self._queue.get()
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            while len(batch) < _MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            self._unacked = len(batch)
            if batch:
                # Past the stop's deadline nothing more is sent: stop() has reported these
                # entries as left pending, and a late XACK would make that untrue.
                if stopping and self._deadline is not None and time.monotonic() >= self._deadline:
                    logger.error("stopping with %d entries not acked; they stay pending for reclaim", len(batch))
                    return
                if self._send(batch):
                    batch = []
                    self._unacked = 0
                    delay.reset()
                else:
                    self._pause(delay.next(), stopping)
                    continue
            if stopping and self._queue.empty():
                return

    def _pause(self, seconds: float, stopping: bool) -> None:
        """Wait between attempts: never past the stop deadline, and cut short by ``stop()``
        (a wait begun before it would otherwise run past the deadline, and the next
        attempt could land after ``stop()`` had reported the entries unacked)."""
        if stopping and self._deadline is not None:
            time.sleep(min(seconds, max(self._deadline - time.monotonic(), 0)))
        else:
            self._stop_requested.wait(seconds)

    def _send(self, batch: list[Work]) -> bool:
        by_transport: dict[RedisTransport, dict[tuple[str, str], list[bytes]]] = defaultdict(lambda: defaultdict(list))
        forget: dict[RedisTransport, list[tuple[str, str]]] = defaultdict(list)
        for work in batch:
            transport = work.route.transport
            group = work.route.group
            by_transport[transport][(work.stream, group)].append(work.entry_id)
            if work.delivery_count > 1:  # redelivered: its handler runs were counted
                forget[transport].append((attempts_key(work.stream), attempts_field(work.stream, group, work.entry_id)))
        try:
            for transport, acks in by_transport.items():
                transport.ack(acks, forget[transport])
                for (stream, _group), ids in acks.items():
                    if is_replay_stream(stream):  # read by this group alone: done with it
                        transport.delete_entries(stream, [i.decode() for i in ids])
        except TRANSIENT_ERRORS as exc:
            logger.warning("acking %d entries failed (%s: %s); will retry", len(batch), type(exc).__name__, exc)
            return False
        except redis.ResponseError as exc:
            # NOGROUP after Redis lost its data: nothing left to ack.
            logger.error("Redis refused XACK for %d entries: %s; dropped", len(batch), exc)
        self._in_flight.discard_many(batch)
        self._stats.add("acked", len(batch))
        return True
