"""What a Redis user must be allowed to run, and checking it before starting.

Each role's commands are listed with the keys they touch (ACL key patterns apply):

- a producer (``fire()``): ``XADD`` on its streams, the schema keys;
- a runner: reading, acking, claiming and trimming its streams, dead-lettering (Lua
  scripts), the attempt counters, the replay streams, the schema keys;
- the operators' commands (``status``, ``inspect``, ``dead-letters``).

``PRODUCER_ACL``, ``RUNNER_ACL`` and ``OPS_ACL`` are the matching ACL rules (documented
in docs/deployment.md, "ACL users").

``missing_commands`` asks Redis (7+) which of them the connected user may not run, with
one script calling ``redis.acl_check_cmd`` (``ACL DRYRUN`` needs ``@admin``). Redis 6.2
has no way to ask: a refusal then shows at the command's first use.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

#: A command as Redis would receive it, with placeholder arguments but real key names.
CommandLine = tuple[str, ...]

#: The keys lightbus_sync uses: streams ``<api>.*:stream`` / ``<api>.<event>:stream``;
#: ``{<stream>}:dead``, ``{<stream>}:attempts``, ``{<stream>}:replay:<group>``; schemas.
_STREAM_KEYS = ("~*:stream",)
_STREAM_STATE_KEYS = ("~{*}:dead", "~{*}:attempts", "~{*}:replay:*")
_SCHEMA_KEYS = ("~schema:*", "~schemas")

#: ACL rules (``ACL SETUSER <name> on >password <rules...>``) of a producer: ``fire()``
#: and publishing / reading schemas.
PRODUCER_ACL: tuple[str, ...] = (
    *_STREAM_KEYS, *_SCHEMA_KEYS, "+ping", "+xadd", "+set", "+expire", "+sadd", "+smembers", "+mget",
)
#: ACL rules of a runner (``lightbus-sync run``): reading, acking, claiming and trimming
#: its streams, dead-lettering and replays (Lua scripts), attempt counters, schemas.
RUNNER_ACL: tuple[str, ...] = (
    *_STREAM_KEYS, *_STREAM_STATE_KEYS, *_SCHEMA_KEYS,
    "+ping", "+info", "+time", "+xreadgroup", "+xack", "+xgroup|create", "+xgroup|createconsumer",
    "+xgroup|delconsumer", "+xpending", "+xclaim", "+xautoclaim", "+xinfo|groups", "+xinfo|consumers",
    "+xinfo|stream", "+xrange", "+xtrim", "+xadd", "+xdel", "+xlen", "+hincrby", "+hget", "+hset", "+hdel",
    "+expire", "+evalsha", "+script|load", "+set", "+sadd", "+smembers", "+mget",
)
#: ACL rules of the operators' commands: ``status``, ``inspect``, ``dead-letters``
#: (``replay`` and ``purge`` included).
OPS_ACL: tuple[str, ...] = (
    *_STREAM_KEYS, *_STREAM_STATE_KEYS, *_SCHEMA_KEYS,
    "+ping", "+info", "+time", "+scan", "+exists", "+smembers", "+mget",
    "+xinfo|stream", "+xinfo|groups", "+xinfo|consumers", "+xpending", "+xlen", "+xrange", "+xrevrange", "+xread",
    "+evalsha", "+script|load", "+xgroup|create", "+xadd", "+xdel",
)

_ANY_ID = "0-1"


def producer_commands(streams: Iterable[str], schema_keys: Iterable[str] = ()) -> list[CommandLine]:
    """What ``fire()`` sends: ``XADD`` (with ``MAXLEN`` if capped) per stream; schema
    publishing and loading (``SET``/``EXPIRE``/``SADD``/``SMEMBERS``/``MGET``)."""
    commands: list[CommandLine] = [("PING",)]
    for stream in streams:
        commands.append(("XADD", stream, "MAXLEN", "~", "1", "*", "f", "v"))
    commands += _schema_commands(schema_keys)
    return commands


def runner_commands(
    stream: str, group: str, consumer: str, *, dead_stream: str, attempts_key: str, replay_stream: str,
) -> list[CommandLine]:
    """What a runner sends for one stream and consumer group (schemas: see
    ``producer_commands``)."""
    return [
        ("XGROUP", "CREATE", stream, group, "$", "MKSTREAM"),
        ("XGROUP", "CREATECONSUMER", stream, group, consumer),
        ("XGROUP", "DELCONSUMER", stream, group, consumer),
        ("XREADGROUP", "GROUP", group, consumer, "COUNT", "1", "STREAMS", stream, ">"),
        ("XACK", stream, group, _ANY_ID),
        ("XPENDING", stream, group, "-", "+", "1"),
        ("XCLAIM", stream, group, consumer, "0", _ANY_ID, "JUSTID"),
        ("XAUTOCLAIM", stream, group, consumer, "0", "0-0", "COUNT", "1"),
        ("XINFO", "GROUPS", stream),
        ("XINFO", "CONSUMERS", stream, group),
        ("XINFO", "STREAM", stream),
        ("XRANGE", stream, "-", "+", "COUNT", "1"),
        ("XTRIM", stream, "MINID", "~", _ANY_ID),
        ("EVALSHA", "0" * 40, "1", stream),
        ("SCRIPT", "LOAD", "return 1"),
        ("XADD", dead_stream, "*", "f", "v"),
        ("XDEL", dead_stream, _ANY_ID),
        ("HINCRBY", attempts_key, "f", "1"),
        ("HGET", attempts_key, "f"),
        ("HSET", attempts_key, "f", "1"),
        ("HDEL", attempts_key, "f"),
        ("EXPIRE", attempts_key, "1"),
        ("XGROUP", "CREATE", replay_stream, group, "0", "MKSTREAM"),
        ("XREADGROUP", "GROUP", group, consumer, "COUNT", "1", "STREAMS", replay_stream, ">"),
        ("XACK", replay_stream, group, _ANY_ID),
        ("XDEL", replay_stream, _ANY_ID),
        ("INFO", "server"),
        ("TIME",),
    ]


def _schema_commands(schema_keys: Iterable[str]) -> list[CommandLine]:
    commands: list[CommandLine] = [("SMEMBERS", "schemas"), ("SADD", "schemas", "x")]
    for key in schema_keys:
        commands += [("SET", key, "x"), ("EXPIRE", key, "1"), ("MGET", key)]
    return commands


def describe(command: CommandLine) -> str:
    """``XGROUP CREATE on shop.*:stream``: the command's name (with its subcommand) and
    its key, for messages."""
    name = command[0]
    rest = list(command[1:])
    if name in ("XGROUP", "XINFO", "SCRIPT") and rest:
        name, rest = f"{name} {rest[0]}", rest[1:]
    if command[0] == "XREADGROUP":
        key = rest[rest.index("STREAMS") + 1]
    elif command[0] in ("PING", "TIME", "INFO", "SCRIPT") or not rest:
        key = ""
    elif command[0] == "EVALSHA":
        key = rest[2] if len(rest) > 2 else ""
    else:
        key = rest[0]
    return f"{name} on {key}" if key else name


def missing_commands(transport: Any, commands: Sequence[CommandLine]) -> list[str]:
    """The commands (as ``describe`` gives them, duplicates removed) the connected user
    may not run; [] when all are allowed, or on Redis < 7 (it cannot tell). If even the
    check's script is refused, that refusal (``EVAL``/``EVALSHA``) is what is missing."""
    if tuple(transport.server_version()[:1]) < (7,):
        return []
    indexes = transport.refused_commands(commands)
    seen: dict[str, None] = {}
    for index in indexes:
        seen.setdefault(describe(commands[index]), None)
    return list(seen)
