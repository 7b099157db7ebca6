"""Every Redis command lightbus_sync issues lives in this module.

``RedisTransport`` wraps one thread-safe redis-py client (one connection pool) for one
Redis URL. Writes retry transient failures (connection refused/reset, timeouts,
``LOADING``, failover ``READONLY``) with backoff inside a deadline and then raise
``BusUnavailable``; they never fail silently.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

import redis
from redis.exceptions import ReadOnlyError

from .errors import BusUnavailable, TransportError
from .redis_url import make_client, redact

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Failures that a retry (after a pause) can fix.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,  # includes BusyLoadingError (LOADING)
    redis.TimeoutError,
    ReadOnlyError,  # a replica after failover
    ConnectionResetError,
    BrokenPipeError,
)


class RedisTransport:
    """One Redis URL: its client, and the commands the bus sends to it."""

    def __init__(self, url: str, *, socket_timeout: float = 5.0, connect_timeout: float = 2.0) -> None:
        self.url = url
        self.safe_url = redact(url)
        self.socket_timeout = socket_timeout
        self.client: redis.Redis = make_client(
            url, socket_timeout=socket_timeout, connect_timeout=connect_timeout
        )
        # The same pool, replying raw for commands whose redis-py parsing loses data
        # (XAUTOCLAIM on Redis 6.2 drops deleted entries' positions).
        self._raw_client = redis.Redis(connection_pool=self.client.connection_pool)
        self._raw_client.set_response_callback("XAUTOCLAIM", lambda response, **options: response)
        self._scripts = _load_scripts(self.client)
        self._extra_clients: list[redis.Redis] = []

    def close(self) -> None:
        for client in [self.client, *self._extra_clients]:
            client.close()
            client.connection_pool.disconnect()

    # --- retry -----------------------------------------------------------------------

    def call_with_retry(self, what: str, operation: Callable[[], T], timeout: float) -> T:
        """Run ``operation`` until it succeeds or ``timeout`` seconds have passed.

        Transient failures are retried with exponential backoff (50 ms doubling, at most
        1 s, with jitter); then ``BusUnavailable`` is raised naming the redacted URL.
        Other Redis errors raise ``TransportError`` at once.
        """
        deadline = time.monotonic() + timeout
        delay = 0.05
        attempts = 0
        while True:
            attempts += 1
            try:
                return operation()
            except TRANSIENT_ERRORS as exc:
                last_error: BaseException = exc
            except redis.ResponseError as exc:
                raise TransportError(f"Redis at {self.safe_url} refused {what}: {exc}") from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BusUnavailable(
                    f"Redis at {self.safe_url} unavailable for {what}: gave up after "
                    f"{attempts} attempt(s) in {timeout:g}s: {type(last_error).__name__}: {last_error}"
                ) from last_error
            logger.debug("%s failed (%s); retrying", what, last_error)
            time.sleep(min(delay * (0.5 + random.random() / 2), remaining))
            delay = min(delay * 2, 1.0)

    # --- producing -------------------------------------------------------------------

    def add_event(
        self, stream: str, fields: Mapping[str, str], max_length: Optional[int], timeout: float
    ) -> str:
        """``XADD stream [MAXLEN ~ n] * fields``; return the entry id.

        A retried write re-sends the same fields (same event id): after a timeout the
        first attempt may have landed too, so consumers de-duplicate on the event id.
        """
        client = self.client
        maxlen = max_length or None

        def xadd() -> Any:
            return client.xadd(stream, fields, maxlen=maxlen, approximate=True)

        entry_id = self.call_with_retry(f"XADD {stream}", xadd, timeout)
        return entry_id.decode() if isinstance(entry_id, bytes) else entry_id

    def add_events(
        self, items: Sequence[tuple[str, Mapping[str, str]]], max_length: Optional[int], timeout: float
    ) -> list[str]:
        """Pipelined ``XADD`` of many entries (one round trip, not atomic); return their ids.

        On a transient failure the whole batch is re-sent (same event ids).
        """
        client = self.client
        maxlen = max_length or None

        def pipelined_xadd() -> list[Any]:
            with client.pipeline(transaction=False) as pipe:
                for stream, fields in items:
                    pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)
                return pipe.execute()

        ids = self.call_with_retry(f"XADD x{len(items)} (pipelined)", pipelined_xadd, timeout)
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    # --- schemas ---------------------------------------------------------------------

    def store_schemas(self, documents: Mapping[str, str], ttl: Optional[int]) -> None:
        """``SET schema:{api} doc`` + ``EXPIRE`` + ``SADD schemas {api}`` (pipelined), as Lightbus."""
        with self.client.pipeline(transaction=False) as pipe:
            for api_name, document in documents.items():
                pipe.set(f"schema:{api_name}", document)
                if ttl:
                    pipe.expire(f"schema:{api_name}", ttl)
                pipe.sadd("schemas", api_name)
            pipe.execute()

    def load_schemas(self) -> dict[str, str]:
        """``SMEMBERS schemas`` then ``MGET schema:...``: api name -> document (expired
        ones are skipped)."""
        names = sorted(n.decode() if isinstance(n, bytes) else n for n in self.client.smembers("schemas"))
        if not names:
            return {}
        values = self.client.mget([f"schema:{name}" for name in names])
        return {
            name: value.decode() if isinstance(value, bytes) else value
            for name, value in zip(names, values) if value is not None
        }

    # --- consuming -------------------------------------------------------------------
    # These raise redis-py's errors as they come: the runner decides how to recover.

    def reading_client(self, block_ms: int) -> redis.Redis:
        """A client for blocking reads, its socket timeout above the BLOCK time
        (a timeout shorter than BLOCK would look like a dead server)."""
        key = f"_reading_client_{block_ms}"
        client = self.__dict__.get(key)
        if client is None:
            client = make_client(
                self.url, socket_timeout=self.socket_timeout + block_ms / 1000, connect_timeout=2.0
            )
            self.__dict__[key] = client
            self._extra_clients.append(client)
        return client

    def ensure_group(self, stream: str, group: str, start_id: str) -> bool:
        """``XGROUP CREATE stream group start_id MKSTREAM``; False if it existed (BUSYGROUP)."""
        try:
            self.client.xgroup_create(stream, group, id=start_id, mkstream=True)
            return True
        except redis.ResponseError as exc:
            if str(exc).startswith("BUSYGROUP"):
                return False
            raise

    def read_group(
        self, client: redis.Redis, group: str, consumer: str, streams: Mapping[str, str], count: int, block_ms: Optional[int]
    ) -> list[tuple[str, list[tuple[bytes, Optional[dict]]]]]:
        """``XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS ...``: [(stream, [(id, fields)])].

        Id ``>`` gives new entries; ``0`` gives this consumer's own pending entries
        (BLOCK is then ignored by Redis). Deleted pending entries have no fields.
        """
        reply = client.xreadgroup(group, consumer, dict(streams), count=count, block=block_ms)
        return [(name.decode() if isinstance(name, bytes) else name, entries) for name, entries in reply or ()]

    def ack(self, acks: Mapping[tuple[str, str], Sequence[bytes]]) -> None:
        """``XACK`` for many (stream, group) -> ids, in one pipelined round trip."""
        with self.client.pipeline(transaction=False) as pipe:
            for (stream, group), ids in acks.items():
                pipe.xack(stream, group, *ids)
            pipe.execute()

    def autoclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[tuple[bytes, dict]], list[bytes], int]:
        """One ``XAUTOCLAIM`` step: (next cursor, claimed entries, deleted ids, nil count).

        Redis 7 replies [cursor, entries, deleted ids] and drops deleted entries from the
        PEL; Redis 6.2 replies [cursor, entries] with nil for each deleted entry, which
        stays pending (now owned by ``consumer``): ``nil count`` tells the caller so.
        Cursor ``0-0`` means the scan is complete.
        """
        reply = self._raw_client.execute_command(
            "XAUTOCLAIM", stream, group, consumer, min_idle_ms, start, "COUNT", count
        )
        cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        entries: list[tuple[bytes, dict]] = []
        nils = 0
        for item in reply[1] or ():
            if item is None:
                nils += 1
                continue
            entry_id, flat = item[0], item[1]
            if flat is None:
                entries.append((entry_id, {}))
            else:
                entries.append((entry_id, dict(zip(flat[::2], flat[1::2]))))
        deleted = list(reply[2]) if len(reply) > 2 and reply[2] else []
        return cursor, entries, deleted, nils

    def delivery_counts(self, stream: str, group: str, ids: Sequence[bytes]) -> dict[bytes, tuple[bytes, int]]:
        """id -> (owner, delivery count) for pending entries, from one ``XPENDING`` range."""
        if not ids:
            return {}
        low, high = min(ids, key=_id_key), max(ids, key=_id_key)
        rows = self.client.xpending_range(stream, group, min=low, max=high, count=max(len(ids), 1) * 4 + 100)
        return {row["message_id"]: (row["consumer"], row["times_delivered"]) for row in rows}

    def pending_of(self, stream: str, group: str, consumer: str, count: int) -> list[dict]:
        """``XPENDING stream group - + count consumer``: this consumer's pending entries."""
        return self.client.xpending_range(stream, group, min="-", max="+", count=count, consumername=consumer)

    def entry_exists(self, stream: str, entry_id: bytes) -> bool:
        return bool(self.client.xrange(stream, min=entry_id, max=entry_id, count=1))

    def set_idle_if_owner(
        self, stream: str, group: str, consumer: str, idle_ms: int, ids: Sequence[bytes]
    ) -> list[bytes]:
        """Set the idle time of ``ids`` still owned by ``consumer`` (atomic check + XCLAIM
        JUSTID, delivery count unchanged); return the ids it applied to."""
        if not ids:
            return []
        script = self._scripts["claim_if_owner"]
        return script(keys=[stream], args=[group, consumer, max(int(idle_ms), 0), *ids], client=self.client)

    def dead_letter(
        self, stream: str, dead_stream: str, group: str, entry_id: bytes, fields: Sequence[Any], max_length: int
    ) -> bytes:
        """Atomically add ``fields`` to ``dead_stream`` and ``XACK`` the entry."""
        script = self._scripts["dead_letter"]
        return script(keys=[stream, dead_stream], args=[group, entry_id, max_length or 0, *fields], client=self.client)

    def delete_consumer_if_idle(self, stream: str, group: str, consumer: str) -> bool:
        """Delete ``consumer`` from the group only if it has no pending entries and is not
        the group's last consumer (atomic)."""
        script = self._scripts["delete_consumer_if_idle"]
        return bool(script(keys=[stream], args=[group, consumer], client=self.client))

    def consumers(self, stream: str, group: str) -> list[dict]:
        """``XINFO CONSUMERS``: name, pending, idle (ms), and inactive (7.2+)."""
        return self.client.xinfo_consumers(stream, group)


def _id_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


_LUA_DIR = Path(__file__).with_name("lua")


def _load_scripts(client: redis.Redis) -> dict[str, Any]:
    return {path.stem: client.register_script(path.read_text()) for path in sorted(_LUA_DIR.glob("*.lua"))}
