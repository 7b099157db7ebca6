"""The relay: committed outbox rows to Redis, in order per stream, each exactly once.

A round takes each stream's oldest rows (see ``claims``), publishes them with one script
call per batch (``RedisTransport.publish_outbox_entries``: an event id already relayed
within ``dedup_ttl`` is not added again, so a relay that died between its ``XADD`` and
its delete does not publish a row twice), then deletes them. Rows keep their event ids.
When Redis or the database is away, the round fails, nothing is deleted, and the relay
waits (backing off up to ``MAX_BACKOFF`` seconds) and tries again; applications keep
committing rows meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Protocol

import attrs

from ..keys import outbox_relayed_key
from .claims import Batch, claims_for
from .urls import relay_engine, safe_url
from .wakeup import waker_for

if TYPE_CHECKING:  # pragma: no cover
    from ..config import RootConfig
    from ..transport import RedisTransport

logger = logging.getLogger(__name__)

MAX_BACKOFF = 1.0
#: Seconds one batch's script call may keep retrying before the round gives up (the
#: claim's transaction stays open meanwhile).
PUBLISH_TIMEOUT = 2.0

#: api name -> (its transport, its stream's MAXLEN or None)
Destination = Callable[[str], tuple["RedisTransport", Optional[int]]]


@attrs.define
class RelayStats:
    relayed: int = 0  # entries added to streams
    already_relayed: int = 0  # rows whose event id Redis had (deleted without adding)
    rounds: int = 0
    failures: int = 0  # rounds that failed (Redis or database unavailable)


class OutboxRelay:
    """Moves committed rows of one outbox database to Redis; a daemon thread once
    ``start()`` ed. Several relays may run at once (see ``claims``)."""

    def __init__(
        self, engine: Any, destination: Destination, *, batch_size: int = 1000, poll_interval: float = 1.0,
        dedup_ttl: float = 3600.0, on_relayed: Optional[Callable[[Iterable[str]], Any]] = None,
    ) -> None:
        self.engine = engine
        self.destination = destination
        self.batch_size = batch_size
        self.dedup_ttl = dedup_ttl
        self.on_relayed = on_relayed
        self.stats = RelayStats()
        self._stopping = threading.Event()
        self._claims = claims_for(engine, batch_size)
        self._waker = waker_for(engine, poll_interval, self._stopping)
        self._thread: Optional[threading.Thread] = None
        self._failing_since: Optional[float] = None

    def __repr__(self) -> str:
        return f"<OutboxRelay {safe_url(self.engine)}>"

    # --- one round -----------------------------------------------------------------------

    def relay_once(self) -> int:
        """Relay what is committed now (up to ``batch_size`` rows per stream); return how
        many rows were relayed. Raises when Redis or the database fails (nothing of the
        failed batch is deleted)."""
        moved = 0
        api_names: set[str] = set()
        for claim in self._claims.batches():
            with claim as batch:
                if batch is not None:
                    moved += self._publish(batch)
                    api_names.update(row.api_name for row in batch.rows)
        self.stats.rounds += 1
        if api_names and self.on_relayed is not None:
            self.on_relayed(api_names)
        return moved

    def _publish(self, batch: Batch) -> int:
        by_api: dict[str, list] = {}
        for row in batch.rows:  # one stream holds one API's events
            by_api.setdefault(row.api_name, []).append(row)
        for api_name, rows in by_api.items():
            transport, max_length = self.destination(api_name)
            ids = transport.publish_outbox_entries(
                batch.stream, outbox_relayed_key(batch.stream), [(row.event_id, row.fields) for row in rows],
                max_length, self.dedup_ttl, PUBLISH_TIMEOUT,
            )
            added = sum(1 for i in ids if i is not None)
            self.stats.relayed += added
            self.stats.already_relayed += len(ids) - added
            if added < len(ids):
                logger.info("%d row(s) for %s were relayed before (by a relay that stopped before deleting "
                            "them); not added again", len(ids) - added, batch.stream)
        batch.delete([row.id for row in batch.rows])
        return len(batch.rows)

    def relay_all(self, timeout: float = 30.0) -> int:
        """Run rounds until the outbox has nothing committed left (or ``timeout``); the
        number of rows relayed."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            moved = self.relay_once()
            total += moved
            if not moved:
                break
        return total

    # --- the thread ----------------------------------------------------------------------

    def run(self) -> None:
        """Relay until ``stop()``: a round, then (unless it was full) wait for a
        notification or the poll interval; after a failure, back off and retry."""
        backoff = 0.05
        while not self._stopping.is_set():
            try:
                moved = self.relay_once()
            except Exception as exc:
                self.stats.failures += 1
                self._report_failure(exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if self._failing_since is not None:
                logger.info("outbox relay recovered after %.1fs", time.monotonic() - self._failing_since)
                self._failing_since = None
            backoff = 0.05
            if moved < self.batch_size:
                self._waker.wait()
        self._waker.close()
        try:
            self._claims.release()
        except Exception as exc:
            logger.debug("outbox relay could not release its claim (%s)", exc)

    def _report_failure(self, exc: BaseException) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            logger.warning("outbox relay round failed (%s: %s); retrying", type(exc).__name__, exc)
        else:
            logger.debug("outbox relay round failed again (%s: %s)", type(exc).__name__, exc)

    def start(self) -> "OutboxRelay":
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="lightbus-outbox-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the current round; True if the thread ended within ``timeout``."""
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "OutboxRelay":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


class RelayBus(Protocol):
    """What ``relay_for_bus`` needs of a bus (a ``lightbus_sync.Bus``)."""

    config: "RootConfig"
    schemas: Any

    def transport_for(self, api_name: str) -> "RedisTransport": ...

    def local_definition(self, name: str) -> Any: ...


def relay_for_bus(bus: RelayBus, url: Any = None, **options: Any) -> OutboxRelay:
    """A relay publishing through ``bus``'s transports and API settings, on the outbox at
    ``url`` (default ``bus.outbox.url`` of the configuration)."""
    from ..errors import ConfigurationError

    settings = bus.config.bus.outbox
    url = url if url is not None else settings.url
    if url is None:
        raise ConfigurationError(
            "no outbox database: pass a URL or Engine, or set bus.outbox.url in the config "
            "file or $LIGHTBUS_OUTBOX_URL"
        )
    config = bus.config

    def destination(api_name: str) -> tuple["RedisTransport", Optional[int]]:
        return bus.transport_for(api_name), config.api(api_name).redis.max_stream_length or None

    def publish_schemas(api_names: Iterable[str]) -> None:
        for name in api_names:
            if bus.local_definition(name) is not None:
                bus.schemas.ensure_published(name)

    options.setdefault("batch_size", settings.batch_size)
    options.setdefault("poll_interval", settings.poll_interval)
    options.setdefault("dedup_ttl", settings.dedup_ttl)
    options.setdefault("on_relayed", publish_schemas)
    return OutboxRelay(relay_engine(url), destination, **options)
