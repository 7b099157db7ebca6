"""Commands written straight to a redis-py connection, and their replies read back,
without redis-py's per-command layers (``Redis.execute_command``, ``Pipeline``).

Packing uses ``hiredis.pack_command`` when hiredis is installed (the bytes redis-py's
own hiredis packer produces), else the connection's packer. Replies come from the
connection's hiredis reader while they are already buffered; anything else (reading
from the socket, the pure-Python parser, a connection class with its own reply
handling such as Sentinel's) goes through ``connection.read_response()``.
"""

from __future__ import annotations

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
