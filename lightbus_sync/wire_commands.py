"""Commands written straight to a redis-py connection, and their replies read back,
without redis-py's per-command layers (``Redis.execute_command``, ``Pipeline``).

Packing uses ``hiredis.pack_command`` when hiredis is installed (the bytes redis-py's
own hiredis packer produces), else the connection's packer. Replies come from the
connection's hiredis reader while they are already buffered; anything else (reading
from the socket, the pure-Python parser, a connection class with its own reply
handling such as Sentinel's) goes through ``connection.read_response()``.

``HeldConnections`` lends a pool's connections for such writes without the pool's
per-call bookkeeping.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import redis
from redis.connection import AbstractConnection

from redis._parsers.hiredis import NOT_ENOUGH_DATA, _HiredisParser

_pack: Optional[Callable[[tuple[Any, ...]], bytes]]
try:
    from hiredis import pack_command as _pack
except ImportError:  # the pure-Python parser: redis-py packs
    _pack = None
#: Connection classes whose ``read_response`` is redis-py's own (no extra handling of
#: replies), so their buffered replies may be taken from the reader directly.
_PLAIN_READERS: dict[type, bool] = {}


def pack_commands(connection: Any, commands: Sequence[Sequence[Any]]) -> list[bytes]:
    """``commands`` (tuples of str/bytes/int arguments) in the Redis protocol, as the
    chunks ``connection.send_packed_command`` takes."""
    if _pack is not None:
        try:
            if len(commands) == 1:
                return [_pack(tuple(commands[0]))]
            return [b"".join([_pack(tuple(command)) for command in commands])]
        except TypeError as exc:  # an argument hiredis cannot pack: as redis-py reports it
            raise redis.DataError(str(exc)) from None
    return list(connection.pack_commands(commands))


def _reader_of(connection: Any) -> Any:
    """The connection's hiredis reader when buffered replies may be taken from it, else None."""
    kind = type(connection)
    plain = _PLAIN_READERS.get(kind)
    if plain is None:
        plain = _PLAIN_READERS[kind] = kind.read_response is AbstractConnection.read_response
    if not plain or getattr(connection, "protocol", 2) in (3, "3"):
        return None
    parser = connection._parser
    if type(parser) is not _HiredisParser:
        return None
    return parser._reader


def read_replies(connection: Any, count: int) -> tuple[list[Any], Optional[redis.ResponseError]]:
    """Read ``count`` replies: (the replies, an error reply among them as the exception
    or None). Error replies stand in the list as their ``ResponseError``; every reply is
    read, so the connection stays in step. Connection failures raise (redis-py has then
    disconnected the connection)."""
    replies: list[Any] = []
    error: Optional[redis.ResponseError] = None
    append = replies.append
    while len(replies) < count:
        reader = _reader_of(connection)
        if reader is not None:
            while len(replies) < count:
                reply = reader.gets()
                if reply is NOT_ENOUGH_DATA:
                    break
                if isinstance(reply, BaseException):
                    if not isinstance(reply, redis.ResponseError):
                        raise reply  # a protocol error: the caller drops the connection
                    error = error or reply
                elif type(reply) is list and reply and isinstance(reply[0], redis.ConnectionError):
                    raise reply[0]  # as redis-py's parser does
                append(reply)
            if len(replies) == count:
                break
        try:
            append(connection.read_response())
        except redis.ResponseError as exc:
            error = error or exc
            append(exc)
    return replies, error


class HeldConnections:
    """Connections of one redis-py pool that stay checked out between writes: taking one
    is a list pop, not the pool's ``get_connection()``/``release()`` (a lock, counters,
    a socket poll, per call). The checks that matter are kept: a connection with data
    waiting, or closed by the server, is disconnected (the next write reconnects), and a
    forked child never takes its parent's. Safe across threads (``list.pop``/``append``).

    At most ``KEEP`` idle connections are held (and no more than a quarter of the pool's
    ``max_connections``: held ones count against it); more go back to the pool. Only a
    plain ``ConnectionPool`` is held from (a Sentinel pool checks on release that a
    connection still goes to the primary); any other pool is used as it is."""

    KEEP = 8

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._keep = min(self.KEEP, int(getattr(pool, "max_connections", 0)) // 4)
        self._holds = type(pool) is redis.ConnectionPool and self._keep > 0
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def take(self) -> Any:
        """A connection for one write, to be handed back with ``give_back``."""
        if not self._holds:
            return self._pool.get_connection()
        if self._pid != os.getpid():  # a forked child: the parent's connections are not its own
            self._idle, self._pid = [], os.getpid()
        try:
            connection = self._idle.pop()
        except IndexError:
            return self._pool.get_connection()  # checked out for good: the pool still closes it
        if connection._sock is not None:
            try:
                if connection.can_read():
                    connection.disconnect()  # data nobody asked for: never read it as a reply
            except Exception:  # closed by the server, or anything else: start afresh
                connection.disconnect()
        return connection

    def give_back(self, connection: Any) -> None:
        """Hand back a connection from ``take`` (disconnected if it is out of step)."""
        if not self._holds:
            self._pool.release(connection)
            return
        idle = self._idle
        idle.append(connection)
        while len(idle) > self._keep:  # threads handing back at once: the extra ones go back
            try:
                self._pool.release(idle.pop())
            except IndexError:
                break
