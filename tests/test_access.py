"""Checking a Redis user's permissions before starting (lightbus_sync.access), with real
ACL users on Redis 6.2, 7.x and 8.2."""

from __future__ import annotations

import pytest

from lightbus_sync.access import describe, missing_commands, producer_commands, runner_commands
from lightbus_sync.errors import TransportError
from lightbus_sync.transport import RedisTransport

STREAM = "shop.*:stream"


@pytest.fixture
def server(each_redis):
    return each_redis


def user(server, name: str, *rules: str) -> RedisTransport:
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">secret", *rules)
    return RedisTransport(f"redis://{name}:secret@127.0.0.1:{server.port}/0")


def commands() -> list:
    return runner_commands(STREAM, "billing", "c1", dead_stream="{shop.*:stream}:dead",
                           attempts_key="{shop.*:stream}:attempts", replay_stream="{shop.*:stream}:replay:billing")


def test_a_user_allowed_everything_misses_nothing(server):
    transport = user(server, "runner", "~*", "+@all")
    try:
        assert missing_commands(transport, commands()) == []
    finally:
        transport.close()


def test_a_user_without_hdel_is_told_so_on_redis_7(server):
    transport = user(server, "runner", "~*", "+@all", "-hdel", "-xtrim")
    try:
        missing = missing_commands(transport, commands())
    finally:
        transport.close()
    if server.version[0] >= 7:
        assert missing == ["XTRIM on shop.*:stream", "HDEL on {shop.*:stream}:attempts"]
    else:
        assert missing == []  # Redis 6.2 cannot be asked


def test_key_patterns_apply(server):
    transport = user(server, "producer", "~shop.*", "+@all")
    try:
        missing = missing_commands(transport, producer_commands([STREAM, "billing.*:stream"], ["schema:shop"]))
    finally:
        transport.close()
    if server.version[0] >= 7:
        assert missing == ["XADD on billing.*:stream", "SMEMBERS on schemas", "SADD on schemas",
                           "SET on schema:shop", "EXPIRE on schema:shop", "MGET on schema:shop"]


def test_a_user_that_may_not_run_scripts(redis7_server):
    transport = user(redis7_server, "noscripts", "~*", "+@all", "-evalsha", "-eval")
    try:
        with pytest.raises(TransportError, match="refused the permission check"):
            missing_commands(transport, commands())
    finally:
        transport.close()
        with redis7_server.client() as admin:
            admin.acl_deluser("noscripts")


def test_a_refused_password_is_permanent(server):
    transport = RedisTransport(f"redis://nobody:wrong@127.0.0.1:{server.port}/0")
    try:
        with pytest.raises(TransportError, match="retrying will not help"):
            transport.check_connection(timeout=30)
    finally:
        transport.close()


def test_describe_names_subcommands_and_keys():
    assert describe(("XGROUP", "CREATE", STREAM, "g", "$", "MKSTREAM")) == f"XGROUP CREATE on {STREAM}"
    assert describe(("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", STREAM, ">")) == f"XREADGROUP on {STREAM}"
    assert describe(("TIME",)) == "TIME"
    assert describe(("EVALSHA", "0" * 40, "1", STREAM)) == f"EVALSHA on {STREAM}"
