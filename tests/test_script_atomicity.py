"""The Lua scripts do everything or nothing when Redis refuses one of their commands
(a real ACL user lacking it), on Redis 6.2 (undo), 7.x and 8.2 (ACL checked first)."""

from __future__ import annotations

import pytest

from lightbus_sync.errors import ScriptRefused
from lightbus_sync.transport import RedisTransport

STREAM = "shop.*:stream"
DEAD = "{shop.*:stream}:dead"
ATTEMPTS = "{shop.*:stream}:attempts"
REPLAY = "{shop.*:stream}:replay:billing"


@pytest.fixture
def server(each_redis):
    return each_redis


@pytest.fixture
def admin(server):
    client = server.client()
    yield client
    client.close()


def transport_as(server, admin, name: str, *denied: str) -> RedisTransport:
    """A transport logged in as a new ACL user allowed everything but ``denied``."""
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">secret", "~*", "+@all",
                          *[f"-{command}" for command in denied])
    return RedisTransport(f"redis://{name}:secret@127.0.0.1:{server.port}/0")


def pending_entry(admin) -> bytes:
    entry_id = admin.xadd(STREAM, {"id": "e1", "api_name": "shop", "event_name": "x", "version": "1"})
    admin.xgroup_create(STREAM, "billing", id="0")
    admin.xreadgroup("billing", "c1", {STREAM: ">"}, count=1)
    admin.hset(ATTEMPTS, f"billing {entry_id.decode()}", 2)
    return entry_id


def state(admin, entry_id: bytes) -> tuple:
    pending = admin.xpending(STREAM, "billing")["pending"]
    return admin.xlen(DEAD), pending, admin.hget(ATTEMPTS, f"billing {entry_id.decode()}")


def dead_letter(transport: RedisTransport, entry_id: bytes):
    return transport.dead_letter(STREAM, DEAD, ATTEMPTS, "billing", entry_id,
                                 ["dl:reason", "malformed", "id", "e1"], 0)


@pytest.mark.parametrize("denied", ["hdel", "xack", "xadd"])
def test_dead_lettering_without_one_command_changes_nothing(server, admin, denied):
    entry_id = pending_entry(admin)
    transport = transport_as(server, admin, "runner", denied)
    try:
        with pytest.raises(ScriptRefused) as caught:
            dead_letter(transport, entry_id)
    finally:
        transport.close()
    assert caught.value.unchanged is True
    assert f"nothing changed: {denied.upper()} refused" in str(caught.value)
    assert state(admin, entry_id) == (0, 1, b"2")  # no dead letter, still pending, counter kept


def test_dead_lettering_with_every_command_moves_the_entry(server, admin):
    entry_id = pending_entry(admin)
    transport = transport_as(server, admin, "runner")
    try:
        dead_letter(transport, entry_id)
    finally:
        transport.close()
    assert state(admin, entry_id) == (1, 0, None)


def test_two_commands_missing_changes_nothing_either(server, admin):
    entry_id = pending_entry(admin)
    transport = transport_as(server, admin, "runner", "hdel", "xdel")
    try:
        with pytest.raises(ScriptRefused) as caught:
            dead_letter(transport, entry_id)
    finally:
        transport.close()
    assert caught.value.unchanged is True  # checked before the first write
    assert state(admin, entry_id) == (0, 1, b"2")


def test_replay_without_xdel_changes_nothing(server, admin):
    dead_id = admin.xadd(DEAD, {"dl:group": "billing", "id": "e1", "api_name": "shop"}).decode()
    transport = transport_as(server, admin, "ops", "xdel")
    try:
        with pytest.raises(ScriptRefused) as caught:
            transport.replay_dead_letter(DEAD, REPLAY, dead_id, "billing", ["id", "e1", "api_name", "shop"])
    finally:
        transport.close()
    assert caught.value.unchanged is True
    assert admin.xlen(DEAD) == 1
    assert admin.xlen(REPLAY) == 0  # created (empty) on 6.2 at most, no entry replayed


def test_lease_renewal_without_xclaim_changes_nothing(server, admin):
    entry_id = pending_entry(admin)
    transport = transport_as(server, admin, "runner", "xclaim")
    try:
        with pytest.raises(Exception, match="may not run XCLAIM|can.t run this command"):
            transport.set_idle_if_owner(STREAM, "billing", "c1", 0, [entry_id])
    finally:
        transport.close()
    assert admin.xpending(STREAM, "billing")["pending"] == 1
