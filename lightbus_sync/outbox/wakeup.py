"""What a relay waits on between rounds: PostgreSQL notifications, else a poll interval."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from .tables import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)

#: The longest a wait blocks without looking at the stop flag.
_SLICE = 0.25


class PollWaker:
    """Waits ``poll_interval`` seconds (or until stopped)."""

    def __init__(self, poll_interval: float, stopping: threading.Event) -> None:
        self.poll_interval = poll_interval
        self.stopping = stopping

    def wait(self) -> None:
        self.stopping.wait(self.poll_interval)

    def close(self) -> None:
        pass


class NotifyWaker(PollWaker):
    """``LISTEN lightbus_outbox`` on a connection of its own (psycopg 3): a commit that
    inserted outbox rows ends the wait at once; ``poll_interval`` bounds it otherwise.
    If the connection fails, it waits as ``PollWaker`` and listens again next time."""

    def __init__(self, engine: Any, poll_interval: float, stopping: threading.Event) -> None:
        super().__init__(poll_interval, stopping)
        self.engine = engine
        self._connection: Optional[Any] = None

    def _listen(self) -> Optional[Any]:
        if self._connection is None:
            try:
                pooled = self.engine.raw_connection()
                driver = pooled.driver_connection
                pooled.detach()  # LISTEN state must not return to the pool
                if not hasattr(driver, "notifies"):
                    driver.close()
                    return None
                driver.autocommit = True
                driver.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self._connection = driver
            except Exception as exc:
                logger.debug("outbox relay cannot LISTEN (%s); polling", exc)
                return None
        return self._connection

    def wait(self) -> None:
        connection = self._listen()
        if connection is None:
            return super().wait()
        deadline = time.monotonic() + self.poll_interval
        try:
            while not self.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                # (Never timeout=0: psycopg would then wait without a limit.) Notifications
                # queued meanwhile end later waits at once: a spare round finds nothing.
                for _ in connection.notifies(timeout=max(min(remaining, _SLICE), 0.001), stop_after=1):
                    return
        except Exception as exc:
            logger.debug("outbox relay's LISTEN connection failed (%s); polling", exc)
            self.close()
            super().wait()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass


def waker_for(engine: Any, poll_interval: float, stopping: threading.Event) -> PollWaker:
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return NotifyWaker(engine, poll_interval, stopping)
    return PollWaker(poll_interval, stopping)
