"""What the test transports (``record_events``'s and ``in_memory``'s) share: they stand
in for ``RedisTransport`` on the fire path, keep schemas in a dict, and refuse, naming
themselves, everything else a ``RedisTransport`` does."""

from __future__ import annotations

import threading
import time
from typing import Any, Mapping, Optional


class StreamIdClock:
    """Redis-like stream ids for entries kept in memory: ``<unix ms>-<sequence>``,
    increasing. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def next(self) -> str:
        with self._lock:
            now = int(time.time() * 1000)
            if now > self._last_ms:
                self._last_ms, self._seq = now, 0
            else:
                self._seq += 1
            return f"{self._last_ms}-{self._seq}"


class StandInTransport:
    """Base of the test transports. Subclasses write ``add_event``/``add_events`` and
    say in ``refusal`` (``{name}`` is the method asked for) why they cannot do more."""

    url = safe_url = "memory://"
    refusal = "this test transport cannot {name}()"

    def __init__(self, schemas: dict[str, str], lock: "threading.RLock") -> None:
        self._schemas = schemas
        self._schemas_lock = lock
        self._ids = StreamIdClock()

    def store_schemas(self, documents: Mapping[str, str], ttl: Optional[int]) -> None:
        with self._schemas_lock:
            self._schemas.update(documents)

    def load_schemas(self) -> dict[str, str]:
        with self._schemas_lock:
            return dict(self._schemas)

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(self.refusal.format(name=name))
