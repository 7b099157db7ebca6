"""Commands written straight to a connection and their replies read back
(lightbus_sync.wire_commands), on a real redis-server: replies that span several socket
reads, error replies among them, the pure-Python and RESP3 paths, and connection classes
with their own reply handling."""

from __future__ import annotations

import gc
import os

import pytest
import redis
from redis.connection import Connection

from lightbus_sync import wire_commands
from lightbus_sync.wire_commands import HeldConnections, pack_commands, read_replies

STREAM = "wire_commands:stream"


def _send(connection: Connection, commands: list[tuple]) -> tuple[list, object]:
    connection.send_packed_command(pack_commands(connection, commands))
    return read_replies(connection, len(commands))


@pytest.fixture
def connection(redis_server, redis_url):
    connection = Connection(host="127.0.0.1", port=redis_server.port)
    connection.connect()
    yield connection
    connection.disconnect()


@pytest.fixture
def pool(redis_server):
    """A plain pool on the test Redis (what HeldConnections holds from), disconnected after."""
    pool = redis.ConnectionPool(host="127.0.0.1", port=redis_server.port)
    yield pool
    pool.disconnect()


def test_packing_is_the_bytes_redis_py_sends(connection):
    commands = [("XADD", STREAM, "MAXLEN", "~", 100, "*", "id", "zoë", ":n", "1"), ("PING",)]
    assert b"".join(pack_commands(connection, commands)) == b"".join(connection.pack_commands(commands))
    assert pack_commands(connection, commands[:1]) == [b"".join(connection.pack_command(*commands[0]))]


def test_an_argument_that_cannot_be_packed_is_a_data_error(connection):
    with pytest.raises(redis.DataError, match="str, int, float or bytes"):
        pack_commands(connection, [("XADD", STREAM, "*", "field", ["a list"])])


def test_thousands_of_replies_over_several_reads_with_error_replies_among_them(connection, redis_client):
    redis_client.set("not-a-stream", "x")
    count = 6000  # ~130 kB of replies: more than one read of 64 kB
    commands = [("XADD", STREAM, "*", "n", str(i)) for i in range(count)]
    commands[1500] = ("XADD", "not-a-stream", "*", "n", "1500")
    commands[count - 1] = ("INCR", "not-a-stream")
    replies, error = _send(connection, commands)
    assert len(replies) == count
    assert isinstance(error, redis.ResponseError) and "WRONGTYPE" in str(error)
    assert replies[1500] is error
    assert isinstance(replies[-1], redis.ResponseError) and "not an integer" in str(replies[-1])
    ids = [entry_id for entry_id, _ in redis_client.xrange(STREAM)]
    assert [r for i, r in enumerate(replies) if i not in (1500, count - 1)] == ids
    # every reply was read: the next command gets its own
    assert _send(connection, [("PING",)]) == ([b"PONG"], None)


def test_a_connection_class_with_its_own_reply_handling_reads_every_reply_through_it(redis_server, redis_url):
    seen: list[object] = []

    class Counting(Connection):
        def read_response(self, *args, **kwargs):
            reply = super().read_response(*args, **kwargs)
            seen.append(reply)
            return reply

    connection = Counting(host="127.0.0.1", port=redis_server.port)
    try:
        connection.connect()
        seen.clear()  # the handshake's replies
        replies, error = _send(connection, [("SET", "k", "v"), ("GET", "k"), ("PING",)])
    finally:
        connection.disconnect()
    assert (replies, error) == ([b"OK", b"v", b"PONG"], None)
    assert seen == replies


def test_resp3_replies_are_read_through_read_response(redis_server, redis_url):
    connection = Connection(host="127.0.0.1", port=redis_server.port, protocol=3)
    try:
        connection.connect()
        assert wire_commands._reader_of(connection) is None
        replies, error = _send(connection, [("HSET", "h", "a", "1"), ("HGETALL", "h")])
    finally:
        connection.disconnect()
    assert error is None and replies == [1, {b"a": b"1"}]


def test_a_closed_connection_raises_connection_error(redis_server, redis_url, redis_client):
    connection = Connection(host="127.0.0.1", port=redis_server.port, client_name="wire-commands-kill")
    connection.connect()
    try:
        redis_client.client_kill_filter(_type="normal", skipme=True)
        with pytest.raises(redis.ConnectionError):
            _send(connection, [("PING",)])
    finally:
        connection.disconnect()


def test_without_hiredis_redis_py_packs(connection, monkeypatch):
    monkeypatch.setattr(wire_commands, "_pack", None)
    commands = [("XADD", STREAM, "*", "n", "1"), ("XLEN", STREAM)]
    replies, error = _send(connection, commands)
    assert error is None and replies[1] == 1


def _client_id(connection: Connection) -> int:
    connection.send_packed_command(pack_commands(connection, [("CLIENT", "ID")]))
    replies, error = read_replies(connection, 1)
    assert error is None
    return replies[0]


def test_held_connections_are_reused_without_the_pool(pool):
    held = HeldConnections(pool)
    first = held.take()
    ident = _client_id(first)
    held.give_back(first)
    assert held.take() is first and _client_id(first) == ident
    assert pool._created_connections == 1 and not pool._available_connections


def test_a_held_connection_closed_by_the_server_reconnects(pool, redis_client):
    held = HeldConnections(pool)
    connection = held.take()
    ident = _client_id(connection)
    held.give_back(connection)
    redis_client.client_kill_filter(_id=ident)
    again = held.take()
    assert _client_id(again) != ident  # a new connection, and no error on the way


def test_a_held_connection_with_data_nobody_read_is_not_reused_as_is(pool):
    held = HeldConnections(pool)
    connection = held.take()
    ident = _client_id(connection)
    connection.send_packed_command(pack_commands(connection, [("ECHO", "stray")]))  # reply never read
    assert connection.can_read(timeout=5)  # the reply has arrived
    held.give_back(connection)
    again = held.take()
    again.send_packed_command(pack_commands(again, [("ECHO", "mine")]))
    assert read_replies(again, 1) == ([b"mine"], None)
    assert _client_id(again) != ident


def test_a_forked_child_never_takes_its_parents_held_connection(pool):
    held = HeldConnections(pool)
    connection = held.take()
    parent_id = _client_id(connection)
    held.give_back(connection)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            child = held.take()
            same = child is connection
            del connection  # the child's copy of the parent's connection goes away...
            gc.collect()  # ...without shutting down the parent's socket
            os.write(write_end, f"{same} {_client_id(child)}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        same, child_id = pipe.read().split()
    os.waitpid(pid, 0)
    assert same == "False" and int(child_id) != parent_id
    assert held.take() is connection and _client_id(connection) == parent_id  # the parent's still works


def test_how_many_are_held_depends_on_the_pool(redis_server, redis_url):
    def idle_after_giving_back(pool, count: int) -> tuple[int, int]:
        held = HeldConnections(pool)
        taken = [held.take() for _ in range(count)]
        for connection in taken:
            held.give_back(connection)
        return len(held._idle), len(pool._available_connections)

    pools = []
    try:
        pools.append(redis.ConnectionPool(host="127.0.0.1", port=redis_server.port))
        assert idle_after_giving_back(pools[-1], 12) == (HeldConnections.KEEP, 12 - HeldConnections.KEEP)
        pools.append(redis.ConnectionPool(host="127.0.0.1", port=redis_server.port, max_connections=4))
        assert idle_after_giving_back(pools[-1], 3) == (1, 2)  # a quarter of the limit
        pools.append(redis.ConnectionPool(host="127.0.0.1", port=redis_server.port, max_connections=3))
        assert idle_after_giving_back(pools[-1], 3) == (0, 3)  # too small a limit to hold any

        class OwnPool(redis.ConnectionPool):
            pass

        pools.append(OwnPool(host="127.0.0.1", port=redis_server.port))
        assert idle_after_giving_back(pools[-1], 2) == (0, 2)  # another kind of pool: used as it is
    finally:
        for pool in pools:
            pool.disconnect()


def test_held_connections_never_keep_more_than_their_share_of_the_pool(redis_url):
    """Handed back together, connections beyond the kept number go back to the pool."""
    import redis

    from lightbus_sync.wire_commands import HeldConnections

    pool = redis.ConnectionPool.from_url(redis_url, max_connections=12)  # keeps 3
    try:
        held = HeldConnections(pool)
        taken = [held.take() for _ in range(6)]
        for connection in taken:
            held.give_back(connection)
        assert len(held._idle) == 3
        assert len(pool._in_use_connections) == 3 and len(pool._available_connections) == 3
    finally:
        pool.disconnect()
