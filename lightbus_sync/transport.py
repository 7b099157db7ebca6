"""Every Redis command lightbus_sync issues lives in this module.

``RedisTransport`` wraps one thread-safe redis-py client (one connection pool) for one
Redis URL. Writes retry transient failures (connection refused/reset, timeouts,
``LOADING``, failover ``READONLY``) with backoff inside a deadline and then raise
``BusUnavailable``; they never fail silently.
"""

from __future__ import annotations

import logging
import threading
import time
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar, cast

import redis
from redis.exceptions import AskError, ClusterDownError, ReadOnlyError, SlotNotCoveredError, TryAgainError

from .backoff import Backoff
from .cluster import group_by_slot, is_cluster_client
from .errors import BusUnavailable, RedisOutOfMemory, ScriptRefused, TransportError
from .clients import SentinelRedis, is_permanent, make_client, url_socket_timeout
from .keys import SCHEMAS_SET, schema_key
from .redis_url import is_cluster_url, redact
from .replication import ReplicaWait
from .stream_ids import as_text, parse_id
from .wire_commands import HeldConnections, pack_commands, read_replies

#: An entry's fields as Redis returns them (bytes replies).
Fields = dict[bytes, bytes]
#: One parsed reply row of XINFO / XPENDING (redis-py's dicts).
Row = dict[str, Any]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Failures that a retry (after a pause) can fix.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,  # includes BusyLoadingError (LOADING)
    redis.TimeoutError,
    ReadOnlyError,  # a replica after failover
    ConnectionResetError,
    BrokenPipeError,
    # Redis Cluster (redis-py refreshes its slot map before raising these):
    ClusterDownError,  # CLUSTERDOWN, MASTERDOWN: a shard failing over
    TryAgainError,  # TRYAGAIN: keys of one command split by a reshard in progress
    AskError,  # and MovedError: redirections redis-py gave up following
    SlotNotCoveredError,  # no known node serves the slot (slot map being refreshed)
)
#: Every error a Redis command can end with: refused (``RedisError``) or transient.
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, *TRANSIENT_ERRORS)


#: Error replies that mean "not now" (failover in progress, a script running too long;
#: UNBLOCKED: a blocking read cut short because the node became a replica or the slot moved).
_TRANSIENT_REPLY_PREFIXES = ("MASTERDOWN", "TRYAGAIN", "BUSY ", "LOADING", "UNBLOCKED", "CLUSTERDOWN")


def is_transient_reply(exc: BaseException) -> bool:
    """True for an error reply that means "not now" (see ``_TRANSIENT_REPLY_PREFIXES``)."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_TRANSIENT_REPLY_PREFIXES)


def _xadd_command(stream: str, fields: Mapping[str, str], max_length: Optional[int]) -> tuple[Any, ...]:
    """``XADD stream [MAXLEN ~ n] * field value ...`` as a command's arguments."""
    head = ("XADD", stream, "MAXLEN", "~", max_length, "*") if max_length else ("XADD", stream, "*")
    return (*head, *chain.from_iterable(fields.items()))


class RedisTransport:
    """One Redis URL: its client, and the commands the bus sends to it."""

    def __init__(self, url: str, *, socket_timeout: float = 5.0, connect_timeout: float = 2.0) -> None:
        self.url = url
        self.safe_url = redact(url)
        self.socket_timeout = url_socket_timeout(url) or socket_timeout
        socket_timeout = self.socket_timeout
        #: True for a Redis Cluster (``redis+cluster://``): multi-key commands are then
        #: split by hash slot (see ``slot_groups``).
        self.is_cluster = is_cluster_url(url)
        self.client: redis.Redis = make_client(
            url, socket_timeout=socket_timeout, connect_timeout=connect_timeout
        )
        if self.is_cluster:
            # The cluster client replies raw to XAUTOCLAIM, XRANGE, XREVRANGE (cluster.py).
            self._raw_client = self.client
        else:
            # The same pool, replying raw for commands whose redis-py parsing loses data
            # (XAUTOCLAIM on Redis 6.2 drops deleted entries' positions).
            self._raw_client = redis.Redis(connection_pool=self.client.connection_pool)
            self._raw_client.set_response_callback("XAUTOCLAIM", lambda response, **options: response)
        self._scripts = _load_scripts(self.client)
        self._extra_clients: list[redis.Redis] = []
        #: The connections ``_send_commands`` writes on (not on a Redis Cluster).
        self._writers = None if self.is_cluster else HeldConnections(self.client.connection_pool)
        #: The waiting clients' writers (``_writers_of``), by client: made once each.
        self._waiting_writers: dict[int, HeldConnections] = {}
        self._writers_lock = threading.Lock()

    def close(self) -> None:
        for client in [self.client, *self._extra_clients]:
            client.close()
            if not is_cluster_client(client):
                client.connection_pool.disconnect()

    def slot_groups(self, keys: Sequence[str]) -> list[list[str]]:
        """``keys`` in groups that one multi-key command may name: all of them for a
        single Redis, one group per hash slot on a Redis Cluster (a multi-key command
        across slots fails there with CROSSSLOT)."""
        if not self.is_cluster:
            return [list(keys)] if keys else []
        return group_by_slot(keys)

    # --- retry -----------------------------------------------------------------------

    def call_with_retry(self, what: str, operation: Callable[[], T], timeout: float) -> T:
        """Run ``operation`` until it succeeds or ``timeout`` seconds have passed.

        Transient failures are retried with exponential backoff (50 ms doubling, at most
        1 s, with jitter); then ``BusUnavailable`` is raised naming the redacted URL.
        ``OOM`` raises ``RedisOutOfMemory`` at once; other Redis errors raise
        ``TransportError`` at once, and so do connection
        failures no retry can fix (a refused password or ACL user, a TLS certificate
        that does not verify).

        One attempt can itself take up to the socket timeout (a frozen server), so the
        call can last up to ``timeout`` + ``socket_timeout``.
        """
        deadline = time.monotonic() + timeout
        delay: Optional[Backoff] = None  # made on the first failure: the common call has none
        attempts = 0
        while True:
            attempts += 1
            try:
                return operation()
            except TRANSIENT_ERRORS as exc:
                if is_permanent(exc):
                    raise TransportError(
                        f"Redis at {self.safe_url} refused the connection for {what}: "
                        f"{type(exc).__name__}: {exc} (retrying will not help: check the URL's "
                        f"user, password and TLS settings)"
                    ) from None
                last_error: BaseException = exc
            except redis.OutOfMemoryError as exc:
                raise RedisOutOfMemory(
                    f"Redis at {self.safe_url} is out of memory (OOM) and refused {what}: {exc} "
                    f"(free memory: let consumers catch up so streams can be trimmed, or raise maxmemory)"
                ) from exc
            except redis.ResponseError as exc:
                if str(exc).startswith(_TRANSIENT_REPLY_PREFIXES):
                    last_error = exc
                else:
                    raise TransportError(f"Redis at {self.safe_url} refused {what}: {exc}") from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BusUnavailable(
                    f"Redis at {self.safe_url} unavailable for {what}: gave up after "
                    f"{attempts} attempt(s) in {timeout:g}s: {type(last_error).__name__}: {last_error}"
                ) from last_error
            logger.debug("%s failed (%s); retrying", what, last_error)
            if delay is None:
                delay = Backoff(0.05, 1.0, jitter=True)
            time.sleep(min(delay.next(), remaining))

    # --- producing -------------------------------------------------------------------

    def add_event(
        self, stream: str, fields: Mapping[str, str], max_length: Optional[int], timeout: float,
        replication: Optional[ReplicaWait] = None,
    ) -> str:
        """``XADD stream [MAXLEN ~ n] * fields``; return the entry id.

        With ``replication``, the XADD and a ``WAIT`` go in one pipeline, and
        ``ReplicationNotConfirmed`` is raised if too few replicas confirm in time.

        A retried write re-sends the same fields (same event id): after a timeout the
        first attempt may have landed too, so consumers de-duplicate on the event id.
        """
        if replication is not None:
            return self.add_events([(stream, fields)], max_length, timeout, replication)[0]
        command = _xadd_command(stream, fields, max_length)
        if self.is_cluster:
            client = self.client

            def xadd() -> Any:
                return client.execute_command(*command)

            entry_id = self.call_with_retry(f"XADD {stream}", xadd, timeout)
        else:
            entry_id = self.call_with_retry(f"XADD {stream}", lambda: self._send_commands([command])[0], timeout)
        return entry_id.decode() if isinstance(entry_id, bytes) else entry_id

    def add_events(
        self, items: Sequence[tuple[str, Mapping[str, str]]], max_length: Optional[int], timeout: float,
        replication: Optional[ReplicaWait] = None,
    ) -> list[str]:
        """Pipelined ``XADD`` of many entries (one round trip, not atomic); return their ids.

        With ``replication``, the pipeline ends with one ``WAIT`` (see ``replication.py``):
        ``ReplicationNotConfirmed`` (naming the event ids, from the ``id`` fields) if too
        few replicas confirm in time. That is not retried: the entries are on the primary.

        On a transient failure the whole batch is re-sent (same event ids).
        """
        if replication is None:
            return self._add_events_unreplicated(items, max_length, timeout)
        writers = self._writers_of(self.waiting_client(replication))
        commands = [*(_xadd_command(stream, fields, max_length) for stream, fields in items), *replication.commands]

        def pipelined_xadd() -> list[Any]:
            return self._send_commands(commands, writers)

        what = f"XADD {items[0][0]}" if len(items) == 1 else f"XADD x{len(items)} (pipelined)"
        replies = self.call_with_retry(what, self._replicated(pipelined_xadd, replication), timeout)
        waits = replies[len(items):]
        ids = [as_text(i) for i in replies[:len(items)]]
        replication.check(waits, [str(fields.get("id", "?")) for _, fields in items],
                          f"Redis at {self.safe_url}, stream {items[0][0]}", ids)
        return ids

    def _add_events_unreplicated(
        self, items: Sequence[tuple[str, Mapping[str, str]]], max_length: Optional[int], timeout: float
    ) -> list[str]:
        """``add_events`` without a replication wait: the commands written straight to a pooled
        connection (a pipeline on a cluster), skipping redis-py's per-command layers."""
        commands = [_xadd_command(stream, fields, max_length) for stream, fields in items]
        if self.is_cluster:
            client = self.client

            def pipelined_xadd() -> list[Any]:
                with client.pipeline(transaction=False) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    return pipe.execute()

            ids = self.call_with_retry(f"XADD x{len(items)} (pipelined)", pipelined_xadd, timeout)
        else:
            ids = self.call_with_retry(f"XADD x{len(items)} (pipelined)", lambda: self._send_commands(commands),
                                       timeout)
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    def waiting_client(self, replication: ReplicaWait) -> redis.Redis:
        """A client whose socket timeout leaves room for ``replication``'s wait. Raises
        ``ConfigurationError`` on a Redis Cluster (each shard has its own replicas: a
        WAIT there cannot confirm one entry)."""
        if self.is_cluster:
            from .errors import ConfigurationError

            raise ConfigurationError(
                f"min_replicas is not supported with a Redis Cluster URL ({self.safe_url}); set it to 0"
            )
        return self.client_with_timeout_above(replication.timeout_ms)

    def _replicated(self, operation: Callable[[], T], replication: Optional[ReplicaWait]) -> Callable[[], T]:
        """``operation``, with an unknown ``WAITAOF`` (Redis before 7.2) explained."""
        if replication is None or not replication.fsync:
            return operation

        def run() -> T:
            try:
                return operation()
            except redis.ResponseError as exc:
                if "unknown command" in str(exc).lower() and "waitaof" in str(exc).lower():
                    raise TransportError(
                        f"Redis at {self.safe_url} has no WAITAOF (it needs Redis 7.2+ or Valkey 8+): "
                        f"set min_replicas_fsync to false. The entries were written but their "
                        f"replication was not confirmed"
                    ) from None
                raise

        return run

    def publish_outbox_entries(
        self, stream: str, relayed_key: str, entries: Sequence[tuple[str, str]],
        max_length: Optional[int], remember_seconds: float, timeout: float,
    ) -> list[Optional[str]]:
        """In one script, ``XADD`` each (event id, fields as a JSON array ``[name, value,
        ...]``) to ``stream`` unless its event id is in the sorted set ``relayed_key``
        (relayed within ``remember_seconds``), recording the ids it adds. Returns, per
        entry, the new entry id or None (already relayed). Retried as ``add_events`` (a
        retry after a timeout cannot add an entry twice)."""
        script = self._scripts["outbox_publish"]
        args: list[Any] = [0, int(remember_seconds * 1000), max_length or 0]
        for event_id, fields in entries:
            args += (event_id, fields)

        def publish() -> list[Any]:
            args[0] = int(time.time() * 1000)
            return cast(list[Any], script(keys=[stream, relayed_key], args=args, client=self.client))

        ids = self.call_with_retry(f"outbox relay to {stream}", publish, timeout)
        return [(i.decode() if isinstance(i, bytes) else i) or None for i in ids]

    def _writers_of(self, client: redis.Redis) -> HeldConnections:
        """The connections ``_send_commands`` writes on for ``client`` (one of this
        transport's single-Redis clients: its own, or a waiting one)."""
        if client is self.client:
            return cast(HeldConnections, self._writers)
        key = id(client)  # the clients live as long as the transport
        writers = self._waiting_writers.get(key)
        if writers is None:
            with self._writers_lock:
                writers = self._waiting_writers.get(key)
                if writers is None:
                    writers = self._waiting_writers[key] = HeldConnections(client.connection_pool)
        return writers

    def _send_commands(self, commands: Sequence[Sequence[Any]],
                       writers: Optional[HeldConnections] = None) -> list[Any]:
        """Send ``commands`` on one connection (of ``writers``, default the client's) in
        one write and read every reply: a pipeline without redis-py's per-command
        bookkeeping, which costs more CPU than the XADDs themselves (single Redis only;
        replies as redis-py reads them, no response callbacks). An error reply raises
        once every reply is read (the connection stays in step); any other failure drops
        the connection."""
        writers = writers or cast(HeldConnections, self._writers)
        connection = writers.take()
        in_step = False
        try:
            connection.send_packed_command(pack_commands(connection, commands))
            replies, error = read_replies(connection, len(commands))
            in_step = True
            if error is not None:
                raise error
            return replies
        finally:
            if not in_step:
                connection.disconnect()
            writers.give_back(connection)

    # --- schemas ---------------------------------------------------------------------

    def store_schemas(self, documents: Mapping[str, str], ttl: Optional[int]) -> None:
        """``SET schema:{api} doc`` + ``EXPIRE`` + ``SADD schemas {api}`` (pipelined), as Lightbus."""
        with self.client.pipeline(transaction=False) as pipe:
            for api_name, document in documents.items():
                pipe.set(schema_key(api_name), document)
                if ttl:
                    pipe.expire(schema_key(api_name), ttl)
                pipe.sadd(SCHEMAS_SET, api_name)
            pipe.execute()

    def load_schemas(self) -> dict[str, str]:
        """``SMEMBERS schemas`` then ``MGET schema:...``: api name -> document (expired
        ones are skipped)."""
        names = sorted(n.decode() if isinstance(n, bytes) else n for n in self.client.smembers(SCHEMAS_SET))
        if not names:
            return {}
        keys = [schema_key(name) for name in names]
        if self.is_cluster:
            values = cast(Any, self.client).mget_nonatomic(keys)  # one MGET per hash slot (RedisCluster)
        else:
            values = self.client.mget(keys)
        return {
            name: value.decode() if isinstance(value, bytes) else value
            for name, value in zip(names, values) if value is not None
        }

    # --- consuming -------------------------------------------------------------------
    # These raise redis-py's errors as they come: the runner decides how to recover.

    def reading_client(self, block_ms: int) -> redis.Redis:
        """A client for blocking reads, its socket timeout above the BLOCK time
        (a timeout shorter than BLOCK would look like a dead server)."""
        return self.client_with_timeout_above(block_ms)

    def client_with_timeout_above(self, wait_ms: int) -> redis.Redis:
        """A client (its own pool, made once per ``wait_ms``) whose socket timeout is the
        transport's plus ``wait_ms``: for commands that wait on the server (a blocking
        read, ``WAIT``)."""
        key = f"_client_waiting_{wait_ms}"
        client = self.__dict__.get(key)
        if client is None:
            client = make_client(
                self.url, socket_timeout=self.socket_timeout + wait_ms / 1000, connect_timeout=2.0
            )
            self.__dict__[key] = client
            self._extra_clients.append(client)
        return client

    def ensure_group(self, stream: str, group: str, start_id: str, consumer: Optional[str] = None) -> bool:
        """``XGROUP CREATE stream group start_id MKSTREAM``; False if it existed (BUSYGROUP).
        With ``consumer``, also ``XGROUP CREATECONSUMER``: a group is never left without a
        consumer (Lightbus 1.x workers destroy such groups, and Redis 6.2 does not create
        the consumer on a read that finds nothing)."""
        try:
            self.client.xgroup_create(stream, group, id=start_id, mkstream=True)
            created = True
        except redis.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise
            created = False
        if consumer is not None:
            self.client.xgroup_createconsumer(stream, group, consumer)
        return created

    def read_group(
        self, client: redis.Redis, group: str, consumer: str, streams: Mapping[str, str], count: int, block_ms: Optional[int]
    ) -> list[tuple[str, list[tuple[bytes, Optional[Fields]]]]]:
        """``XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS ...``: [(stream, [(id, fields)])].

        Id ``>`` gives new entries; ``0`` gives this consumer's own pending entries
        (BLOCK is then ignored by Redis). Deleted pending entries have no fields.

        On a Redis Cluster, streams in different hash slots are read by one XREADGROUP
        per slot (``_read_by_slot``); the runner's readers give one slot at a time.
        """
        def read(part: Mapping[str, str], block: Optional[int]) -> Any:
            return client.xreadgroup(group, consumer, cast(Any, dict(part)), count=count, block=block)

        return _named(self._read_by_slot(read, streams, block_ms))

    def ack(self, acks: Mapping[tuple[str, str], Sequence[bytes]], forget: Sequence[tuple[str, str]] = ()) -> None:
        """``XACK`` for many (stream, group) -> ids, and ``HDEL`` of attempt counters
        (``forget``: (hash key, field) pairs), in one pipelined round trip. An error
        reply (NOGROUP) raises ``redis.ResponseError`` after every command ran."""
        if self.is_cluster:
            with self.client.pipeline(transaction=False) as pipe:
                for (stream, group), ids in acks.items():
                    pipe.xack(stream, group, *ids)
                for key, field in forget:
                    pipe.hdel(key, field)
                pipe.execute()
            return
        commands: list[Sequence[Any]] = [("XACK", stream, group, *ids) for (stream, group), ids in acks.items()]
        commands += [("HDEL", key, field) for key, field in forget]
        self._send_commands(commands)

    def count_attempt(self, key: str, field: str, ttl_seconds: int) -> int:
        """``HINCRBY key field 1`` + ``EXPIRE key ttl`` (one round trip): the new count."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, field, 1)
            pipe.expire(key, ttl_seconds)
            count, _ = pipe.execute()
        return int(count)

    def mark_retries(self, key: str, fields: Sequence[str], ttl_seconds: int) -> None:
        """``HSET key field 1`` for each field + ``EXPIRE key ttl`` (one round trip)."""
        with self.client.pipeline(transaction=False) as pipe:
            for field in fields:
                pipe.hset(key, field, 1)
            pipe.expire(key, ttl_seconds)
            pipe.execute()

    def take_marks(self, key: str, fields: Sequence[str]) -> list[bool]:
        """``HDEL key field`` for each field (one round trip): which of them were set."""
        if not fields:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for field in fields:
                pipe.hdel(key, field)
            return [bool(n) for n in pipe.execute()]

    def autoclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[tuple[bytes, Fields]], list[bytes], int]:
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
        entries: list[tuple[bytes, Fields]] = []
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
        low, high = min(ids, key=parse_id), max(ids, key=parse_id)
        rows: list[Row] = self.client.xpending_range(stream, group, min=low, max=high, count=max(len(ids), 1) * 4 + 100)
        return {row["message_id"]: (row["consumer"], row["times_delivered"]) for row in rows}

    def pending_of(self, stream: str, group: str, consumer: str, count: int) -> list[Row]:
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
        return cast("list[bytes]", script(keys=[stream], args=[group, consumer, max(int(idle_ms), 0), *ids],
                                           client=self.client))

    def dead_letter(
        self, stream: str, dead_stream: str, attempts_key: str, group: str, entry_id: bytes,
        fields: Sequence[Any], max_length: int, replication: Optional[ReplicaWait] = None,
        event_id: Optional[str] = None,
    ) -> bytes:
        """Atomically add ``fields`` to ``dead_stream``, ``XACK`` the entry and drop its
        attempt counter (field ``<group> <id>`` of ``attempts_key``). A refusal (ACL,
        OOM...) raises ``ScriptRefused`` saying whether anything changed.

        With ``replication``, then ``WAIT`` (one pipeline): ``ReplicationNotConfirmed``
        (naming ``event_id``, else the entry id) if too few replicas confirm. The script's
        writes replicate together: if a failover loses them, the entry is pending again."""
        keys, args = [stream, dead_stream, attempts_key], [group, entry_id, max_length or 0, *fields]
        return cast(bytes, self._script_replicated(
            "dead_letter", keys, args, replication, event_id or as_text(entry_id), f"dead letter to {dead_stream}",
            refused=(f"dead-lettering entry {as_text(entry_id)} of {stream}", "DEADLETTER"),
        ))

    def delete_consumer_if_idle(self, stream: str, group: str, consumer: str) -> bool:
        """Delete ``consumer`` from the group only if it has no pending entries and is not
        the group's last consumer (atomic)."""
        script = self._scripts["delete_consumer_if_idle"]
        return bool(script(keys=[stream], args=[group, consumer], client=self.client))

    def consumers(self, stream: str, group: str) -> list[Row]:
        """``XINFO CONSUMERS``: name, pending, idle (ms), and inactive (7.2+)."""
        return self.client.xinfo_consumers(stream, group)

    # --- operations: status, inspect, dead letters (see lightbus_sync/ops) ---------------
    # Commands for operators' tools. They raise redis-py's errors as they come, except
    # that a missing stream reads as empty (None / [] / 0) where noted.

    def _ops_raw_client(self) -> redis.Redis:
        """The same pool, with XRANGE/XREVRANGE replies left raw: an entry's fields as a
        flat list, in stream order, duplicate field names kept."""
        if self.is_cluster:
            return self.client  # replies raw to XRANGE/XREVRANGE (cluster.py)
        client = self.__dict__.get("_ops_raw")
        if client is None:
            client = redis.Redis(connection_pool=self.client.connection_pool)
            for command in ("XRANGE", "XREVRANGE"):
                client.set_response_callback(command, lambda response, **options: response)
            self.__dict__["_ops_raw"] = client
        return client

    def server_time(self) -> float:
        """``TIME``: the Redis server's clock, in seconds (ages are measured with it, so a
        skewed clock on the operator's machine does not distort them)."""
        seconds, micros = self.client.time()
        return seconds + micros / 1_000_000

    def server_version(self) -> tuple[int, ...]:
        """``INFO server``: the Redis version, e.g. (7, 0, 15)."""
        info = self.client.info("server")
        if info and all(isinstance(value, dict) for value in info.values()):  # a cluster: node -> info
            info = next(iter(info.values()))
        text = str(info.get("redis_version", "0"))
        return tuple(int(p) for p in text.split(".") if p.isdigit()) or (0,)

    def replication_info(self) -> dict[str, Any]:
        """``INFO replication`` of the Redis the client reaches (the primary, for a
        Sentinel URL): role, master_repl_offset, and per replica (``slave0``...) a dict of
        ip, port, state, offset, lag (seconds since its last acknowledgement)."""
        return self.client.info("replication")

    def sentinel_view(self) -> Optional[dict[str, Any]]:
        """For a Sentinel URL: ``service_name``, ``primary`` (host, port) as the sentinels
        name it, ``sentinels`` (how many the URL lists) and ``sentinels_up`` (how many
        answer ``PING``), ``error`` (why no primary is known, else None; ``primary`` is
        then None), ``known_replicas`` (the replicas the sentinels know, up or down: see
        ``_known_replicas``). None for other URLs."""
        client = self.client
        if not isinstance(client, SentinelRedis):
            return None
        up = 0
        for sentinel in client.sentinel.sentinels:
            try:
                sentinel.ping()
                up += 1
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                pass
        primary, error = None, None
        try:
            primary = client.primary_address()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        return {"service_name": client.service_name, "primary": primary, "error": error,
                "sentinels": len(client.sentinel.sentinels), "sentinels_up": up,
                "known_replicas": self._known_replicas(client)}

    @staticmethod
    def _known_replicas(client: SentinelRedis) -> Optional[list[dict[str, Any]]]:
        """``SENTINEL REPLICAS <service>`` of the first sentinel that answers: per replica
        ``address`` (host:port) and ``flags`` (e.g. ``{"slave", "s_down", "disconnected"}``).
        None if no sentinel answers (or may run it)."""
        for sentinel in client.sentinel.sentinels:
            try:
                replicas = sentinel.sentinel_slaves(client.service_name)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                continue
            return [{"address": f"{r['ip']}:{r['port']}", "flags": set(r["flags"].split(","))
                     if isinstance(r["flags"], str) else set(r["flags"])} for r in replicas]
        return None

    def stream_info(self, stream: str) -> Optional[Row]:
        """``XINFO STREAM``: length, first/last entry...; None if the key does not exist."""
        try:
            return self.client.xinfo_stream(stream)
        except redis.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise

    def stream_groups(self, stream: str) -> list[Row]:
        """``XINFO GROUPS``: name, consumers, pending, last-delivered-id, and from Redis 7
        entries-read and lag (lag may be None: unknown). [] if the key does not exist."""
        try:
            return self.client.xinfo_groups(stream)
        except redis.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return []
            raise

    def pending_summary(self, stream: str, group: str) -> Row:
        """``XPENDING stream group``: pending count, min and max id, per-consumer counts."""
        return self.client.xpending(stream, group)

    def pending_entries(
        self, stream: str, group: str, start: str = "-", end: str = "+", count: int = 1,
        *, min_idle_ms: Optional[int] = None,
    ) -> list[Row]:
        """``XPENDING stream group [IDLE ms] start end count``: message_id, consumer,
        time_since_delivered (ms), times_delivered."""
        return self.client.xpending_range(stream, group, min=start, max=end, count=count, idle=min_idle_ms)

    def count_entries_after(self, stream: str, after_id: str, limit: int) -> tuple[int, Optional[str]]:
        """How many entries follow ``after_id`` (exclusive), counting at most ``limit``, in
        Redis (nothing is sent back): (count, id of the last one counted)."""
        script = self._scripts["count_entries_after"]
        count, last = script(keys=[stream], args=[after_id, max(int(limit), 1)], client=self.client)
        if isinstance(last, bytes):
            last = last.decode()
        return int(count), (last or None)

    def stream_length(self, stream: str) -> int:
        """``XLEN`` (0 if the key does not exist)."""
        return int(self.client.xlen(stream))

    def stream_entries(
        self, stream: str, start: str = "-", end: str = "+", count: Optional[int] = None, *, reverse: bool = False
    ) -> list[tuple[bytes, list[tuple[bytes, bytes]]]]:
        """``XRANGE stream start end [COUNT n]`` (``XREVRANGE stream end start`` when
        ``reverse``, newest first): [(id, [(field, value), ...])], fields in stream order
        with duplicate names kept. Ids may be exclusive (``(id``)."""
        args: list[Any] = ["XREVRANGE", stream, end, start] if reverse else ["XRANGE", stream, start, end]
        if count is not None:
            args += ["COUNT", int(count)]
        reply = self._ops_raw_client().execute_command(*args)
        entries = []
        for entry_id, flat in reply or ():
            flat = flat or []
            entries.append((entry_id, list(zip(flat[::2], flat[1::2]))))
        return entries

    def read_streams(
        self, client: redis.Redis, streams: Mapping[str, str], count: int, block_ms: Optional[int]
    ) -> list[tuple[str, list[tuple[bytes, Fields]]]]:
        """``XREAD [COUNT n] [BLOCK ms] STREAMS ...`` (no consumer group: nothing is
        acked or claimed): [(stream, [(id, fields)])]. Use ``reading_client(block_ms)``.
        On a Redis Cluster, streams in different hash slots are read by one XREAD per
        slot (``_read_by_slot``)."""
        def read(part: Mapping[str, str], block: Optional[int]) -> Any:
            return client.xread(cast(Any, dict(part)), count=count, block=block)

        return _named(self._read_by_slot(read, streams, block_ms))

    def _read_by_slot(
        self, read: Callable[[Mapping[str, str], Optional[int]], Any], streams: Mapping[str, str],
        block_ms: Optional[int],
    ) -> list[Any]:
        """``read(streams, block_ms)``, once, when the streams share a hash slot (always on
        a single Redis). Else (a Redis Cluster) one read per slot without blocking; if
        none had entries and ``block_ms`` is set, one blocking read per slot for an equal
        share of ``block_ms`` each, until one returns entries. Replies are concatenated."""
        groups = self.slot_groups(list(streams))
        if len(groups) <= 1:
            return list(read(streams, block_ms) or ())
        parts = [{stream: streams[stream] for stream in group} for group in groups]
        replies: list[Any] = []
        for part in parts:
            replies += read(part, None) or ()
        if any(entries for _, entries in replies) or block_ms is None:
            return replies
        share = max(int(block_ms) // len(parts), 1)
        for part in parts:
            reply = list(read(part, share) or ())
            if any(entries for _, entries in reply):
                return reply
        return []

    def key_exists(self, key: str) -> bool:
        """``EXISTS key``."""
        return bool(self.client.exists(key))

    def find_keys(self, pattern: str, key_type: Optional[str] = "stream", count: int = 1000) -> list[str]:
        """``SCAN 0 MATCH pattern [TYPE t] COUNT n`` to the end: the matching key names
        (on a Redis Cluster, on every master)."""
        names = {
            key.decode() if isinstance(key, bytes) else key
            for key in self.client.scan_iter(match=pattern, count=count, _type=key_type)
        }
        return sorted(names)

    def replay_dead_letter(
        self, dead_stream: str, replay_stream: str, dead_id: str, group: str, fields: Sequence[Any],
        replication: Optional[ReplicaWait] = None, event_id: Optional[str] = None,
    ) -> Optional[str]:
        """Atomically: if entry ``dead_id`` is still in ``dead_stream``, make sure ``group``
        exists on ``replay_stream`` (at 0), ``XADD`` ``fields`` there and ``XDEL`` the dead
        entry. Returns the new id, or None if the dead entry was gone (already replayed or
        purged). If the script fails, the dead entry is not removed.

        With ``replication``, then ``WAIT`` (one pipeline): ``ReplicationNotConfirmed``
        (naming ``event_id``, else ``dead_id``) if too few replicas confirm; if a failover
        then loses the replay, the dead letter is back in ``dead_stream``."""
        new_id = self._script_replicated(
            "replay_dead_letter", [dead_stream, replay_stream], [dead_id, group, *fields], replication,
            event_id or dead_id, f"replay to {replay_stream}",
            refused=(f"replaying dead letter {dead_id} of {dead_stream}", "REPLAY"),
        )
        if new_id is None:
            return None
        return new_id.decode() if isinstance(new_id, bytes) else str(new_id)

    def _script_replicated(
        self, name: str, keys: Sequence[str], args: Sequence[Any], replication: Optional[ReplicaWait],
        event_id: str, what: str, refused: tuple[str, str],
    ) -> Any:
        """Run Lua script ``name``; with ``replication``, followed by its wait in one
        pipeline, raising ``ReplicationNotConfirmed`` if too few replicas confirm. An
        error reply that is not transient raises ``ScriptRefused`` (``refused``: what the
        script does, and the tag its error replies start with)."""
        script = self._scripts[name]
        try:
            if replication is None:
                return script(keys=list(keys), args=list(args), client=self.client)
            with self.waiting_client(replication).pipeline(transaction=False) as pipe:
                script(keys=list(keys), args=list(args), client=pipe)
                replication.add_to(pipe)
                result, *waits = self._replicated(pipe.execute, replication)()
        except redis.ResponseError as exc:
            if is_transient_reply(exc):
                raise
            raise _script_refused(exc, *refused) from exc
        if result is not None:  # None: the script wrote nothing
            replication.check(waits, [event_id], f"Redis at {self.safe_url}, {what}", [as_text(result)])
        return result

    def trim_stream(self, stream: str, min_id: str, *, acked: bool = False, approximate: bool = True) -> int:
        """``XTRIM stream MINID [~|=] min_id [ACKED]``: remove entries older than ``min_id``;
        returns how many went. ``acked`` (Redis 8.2+) keeps any entry some consumer group
        has not read and acknowledged. ``approximate`` trims whole radix-tree nodes only
        (Redis 8.2 removes nothing for ``~`` with ``ACKED``: use exact trims there)."""
        args: list[Any] = ["XTRIM", stream, "MINID", "~" if approximate else "=", min_id]
        if acked:
            args.append("ACKED")
        return int(self.client.execute_command(*args))

    def check_connection(self, timeout: float) -> None:
        """``PING`` (retried like a write for up to ``timeout`` seconds). Raises
        ``TransportError`` at once for a refused password or user (see ``call_with_retry``),
        ``BusUnavailable`` if Redis stays unreachable."""
        self.call_with_retry("PING", self.client.ping, timeout)

    def refused_commands(self, commands: Sequence[Sequence[str]]) -> list[int]:
        """Indexes (0-based) of ``commands`` the connected user may not run (Redis 7+:
        a script calling ``redis.acl_check_cmd``). Raises ``TransportError`` if the
        script itself is refused (no ``EVALSHA``/``SCRIPT LOAD``)."""
        args: list[Any] = []
        for command in commands:
            args += [len(command), *command]
        try:
            reply = self._scripts["check_commands"](keys=[], args=args, client=self.client)
        except redis.ResponseError as exc:
            raise TransportError(
                f"Redis at {self.safe_url} refused the permission check (EVALSHA/EVAL of a script): {exc}"
            ) from exc
        return [int(i) - 1 for i in reply]

    def delete_entries(self, stream: str, ids: Sequence[str]) -> int:
        """``XDEL stream id...`` in batches; returns how many existed and were deleted."""
        deleted = 0
        ids = list(ids)
        for i in range(0, len(ids), 500):
            deleted += int(self.client.xdel(stream, *ids[i:i + 500]))
        return deleted


def _script_refused(exc: redis.ResponseError, what: str, tag: str) -> ScriptRefused:
    """A script's error reply as ScriptRefused: ``<tag> partial: ...`` left something
    changed; any other error (``<tag> unchanged: ...``, a refused EVALSHA, a script
    error before its first write) left everything as it was."""
    message = str(exc)
    if message.startswith(f"{tag} partial: "):
        return ScriptRefused(f"{what} failed part-way: {message[len(tag) + 10:]}", unchanged=False)
    if message.startswith(f"{tag} unchanged: "):
        message = message[len(tag) + 12:]
    return ScriptRefused(f"{what} refused, nothing changed: {message}", unchanged=True)


def _named(reply: Any) -> list[tuple[str, Any]]:
    return [(name.decode() if isinstance(name, bytes) else name, entries) for name, entries in reply or ()]


_LUA_DIR = Path(__file__).with_name("lua")


def _load_scripts(client: redis.Redis) -> dict[str, Any]:
    return {path.stem: client.register_script(path.read_text()) for path in sorted(_LUA_DIR.glob("*.lua"))}
