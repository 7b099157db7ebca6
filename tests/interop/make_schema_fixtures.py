#!/usr/bin/env python
"""Regenerate the Lightbus reference fixtures from a REAL Lightbus 1.1.2.

Writes:
    tests/fixtures/lightbus_schemas/<api_name>.json   exact bytes of `GET schema:<api_name>`
    tests/fixtures/lightbus_schemas/README.md         the Python definitions that produced them
    tests/fixtures/lightbus_wire/fired_event.json     the stream entry of one fired event

This runs under the Lightbus reference virtualenv, NOT under lightbus_sync's
environment, and must never import lightbus_sync:

    python3.11 -m venv /opt/lightbus-venv
    /opt/lightbus-venv/bin/pip install lightbus==1.1.2 'aioredis<2'
    /opt/lightbus-venv/bin/python tests/interop/make_schema_fixtures.py

By default it starts its own throw-away redis-server (needs `redis-server` on
PATH) on a free 127.0.0.1 port and shuts it down afterwards. `--redis-url
redis://127.0.0.1:PORT/0` uses an existing server instead: that server is
FLUSHALLed, so never point it at a Redis holding data you care about.

Determinism: Lightbus builds the `required` list of a dataclass/attrs/plain
class schema by iterating over a `set` of attribute names, so its order depends
on PYTHONHASHSEED. The script re-executes itself with PYTHONHASHSEED=0 so that
reruns produce the same bytes (pass --keep-hash-seed to skip that). The event
`id` (uuid1) of the fired event naturally changes on every run.
"""
import argparse
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if (
    __name__ == "__main__"
    and os.environ.get("PYTHONHASHSEED") != "0"
    and "--keep-hash-seed" not in sys.argv
):
    env = dict(os.environ, PYTHONHASHSEED="0")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

# ---------------------------------------------------------------------------
# Definitions (copied verbatim into tests/fixtures/lightbus_schemas/README.md)
# ---------------------------------------------------------------------------
# --- shared types: start ---
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union
from uuid import UUID

import attr

import lightbus
from lightbus import Api, Event, Parameter

NoneType = type(None)


class Color(Enum):
    """Enum with string values"""

    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Priority(Enum):
    """Enum with int values"""

    LOW = 1
    MEDIUM = 2
    HIGH = 3


class StrColor(str, Enum):
    """str-mixin Enum: Lightbus sees it as a str subclass first (no "enum" list)"""

    RED = "red"
    GREEN = "green"


class Level(IntEnum):
    """IntEnum: Lightbus sees it as an int subclass first (no "enum" list)"""

    DEBUG = 10
    INFO = 20


class Role(Enum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclass
class Address:
    street: str
    city: str
    postcode: Optional[str] = None


@dataclass
class Customer:
    name: str
    address: Address  # nested dataclass
    vip: bool = False  # defaulted field
    tags: List[str] = field(default_factory=list)  # default_factory: Lightbus marks it required


class Point(NamedTuple):
    x: float
    y: float
    label: str = "origin"


@attr.s(auto_attribs=True)
class Money:
    """attrs class (Lightbus 1.1.2 has no attrs support: treated as a plain annotated class)"""

    amount: Decimal
    currency: str = "EUR"


# --- shared types: end ---


class AuthApi(Api):
    # The canonical example: dotted API name, Meta.version = 3
    user_registered = Event(
        parameters=[
            Parameter("username", str),
            Parameter("email", str),
            Parameter("is_admin", bool, default=False),
        ]
    )
    # Untyped parameters given as plain names
    user_deleted = Event(parameters=("username", "email"))
    # The event fired for tests/fixtures/lightbus_wire/fired_event.json
    user_updated = Event(
        parameters=[
            Parameter("username", str),
            Parameter("user_id", UUID),
            Parameter("updated_at", datetime),
            Parameter("birthday", date),
            Parameter("balance", Decimal),
            Parameter("role", Role),
            Parameter("tags", List[str]),
            Parameter("scores", Dict[str, int]),
            Parameter("address", Address),
            Parameter("location", Point),
            Parameter("is_admin", bool, default=False),
            Parameter("note", Optional[str], default=None),
        ]
    )

    def check_password(self, username: str, password: str) -> bool:
        return password == "secret"

    class Meta:
        name = "my_company.auth"
        version = 3


class TypesApi(Api):
    # One required parameter per basic type
    primitives = Event(
        parameters=[
            Parameter("s", str),
            Parameter("i", int),
            Parameter("f", float),
            Parameter("b", bool),
            Parameter("n", None),  # annotated `None`
            Parameter("nt", NoneType),  # annotated NoneType
            Parameter("raw", bytes),
            Parameter("anything", Any),
        ]
    )
    unions = Event(
        parameters=[
            Parameter("opt_str", Optional[str]),
            Parameter("int_or_str", Union[int, str]),
            Parameter("opt_str_default_none", Optional[str], default=None),
            Parameter("str_default_none", str, default=None),
            Parameter("int_or_str_default", Union[int, str], default=0),
        ]
    )
    containers = Event(
        parameters=[
            Parameter("list_int", list[int]),
            Parameter("list_str", List[str]),
            Parameter("tuple_ellipsis", tuple[int, ...]),
            Parameter("tuple_fixed", Tuple[int, str]),
            Parameter("set_str", set[str]),
            Parameter("dict_str_int", dict[str, int]),
            Parameter("dict_str_float", Dict[str, float]),
            Parameter("bare_list", list),
            Parameter("bare_dict", dict),
            Parameter("list_of_dataclass", List[Address]),
        ]
    )
    specials = Event(
        parameters=[
            Parameter("when", datetime),
            Parameter("day", date),
            Parameter("uid", UUID),
            Parameter("amount", Decimal),
            Parameter("color", Color),
            Parameter("priority", Priority),
            Parameter("str_color", StrColor),
            Parameter("level", Level),
        ]
    )
    objects = Event(
        parameters=[
            Parameter("customer", Customer),
            Parameter("point", Point),
            Parameter("money", Money),
            Parameter("maybe_address", Optional[Address]),
        ]
    )

    class Meta:
        name = "my_company.types"


class DefaultsApi(Api):
    # Untyped parameters with defaults: the type is taken from the default's type
    untyped_defaults = Event(
        parameters=[
            "plain",  # untyped, required
            Parameter("flag", default=False),
            Parameter("nothing", default=None),
            Parameter("count", default=0),
            Parameter("name", default="x"),
            Parameter("items", default=[1, 2]),
        ]
    )
    # Typed parameters with defaults
    typed_defaults = Event(
        parameters=[
            Parameter("flag", bool, default=False),
            Parameter("nothing", Optional[int], default=None),
            Parameter("count", int, default=0),
            Parameter("name", str, default="x"),
            Parameter("items", List[int], default=[1, 2]),
            Parameter("ratio", float, default=0.5),
        ]
    )
    # An event without parameters
    ping = Event()
    # (lightbus.WildcardParameter() cannot even be instantiated on Python 3.11:
    #  "variadic keyword parameters cannot have default values")

    class Meta:
        name = "defaults_demo"
        version = 2


class CalculatorApi(Api):
    # RPCs: parameter schemas come from the method signature, plus a response schema
    def add(self, a: int, b: int = 1) -> int:
        return a + b

    def describe(self, point: Point, when: datetime, tags: List[str] = None) -> Dict[str, str]:
        return {}

    def untyped(self, value, flag=True):
        return value

    def nothing(self) -> None:
        return None

    def flexible(self, kind: str, **kwargs) -> Any:
        # **kwargs: the parameter schema gets "additionalProperties": true
        return kwargs

    class Meta:
        name = "my_company.calculator"


API_CLASSES = [AuthApi, TypesApi, DefaultsApi, CalculatorApi]


def fire_sample_event(bus):
    """Fires the event captured in tests/fixtures/lightbus_wire/fired_event.json"""
    return bus.my_company.auth.user_updated.fire(
        username="zoë",
        user_id=UUID("12345678-1234-5678-1234-567812345678"),
        updated_at=datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
        birthday=date(1990, 12, 31),
        balance=Decimal("1234.50"),
        role=Role.ADMIN,
        tags=["b", "a", "snowman ☃"],
        scores={"z": 1, "a": 2},
        address=Address(street="1 Main St", city="Springfield"),
        location=Point(x=1.5, y=-2.0),
        is_admin=True,
        note=None,
    )


# ---------------------------------------------------------------------------
# Machinery
# ---------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "tests" / "fixtures" / "lightbus_schemas"
WIRE_DIR = REPO / "tests" / "fixtures" / "lightbus_wire"


class Resp:
    """A minimal blocking RESP2 client returning raw bytes (no decoding, no redis-py)."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            if isinstance(a, str):
                a = a.encode("utf8")
            elif isinstance(a, int):
                a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError(f"bad reply {line!r}")

    def __call__(self, *args):
        self.send(*args)
        return self.read()

    def close(self):
        self.sock.close()


class Monitor(threading.Thread):
    """Collects MONITOR lines from the private Redis."""

    def __init__(self, host, port):
        super().__init__(daemon=True)
        self.conn = Resp(host, port)
        self.conn.sock.settimeout(None)
        self.lines = []
        self.stopped = False

    def run(self):
        self.conn.send("MONITOR")
        self.conn.read()  # +OK
        while not self.stopped:
            try:
                line = self.conn.read()
            except (OSError, ConnectionError):
                return
            self.lines.append(line.decode("utf8", "backslashreplace"))

    def stop(self):
        self.stopped = True
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_private_redis():
    exe = shutil.which("redis-server")
    if not exe:
        sys.exit("redis-server not found on PATH (or pass --redis-url)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="lb-fixture-redis-")
    proc = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            Resp("127.0.0.1", port)("PING")
            return proc, port, workdir
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


def dump_fired(fired):
    """json.dumps(indent=2), but with one [field, value] pair per line"""
    lines = []
    for key, value in fired.items():
        if key == "fields":
            pairs = ",\n".join("    " + json.dumps(p, ensure_ascii=False) for p in value)
            lines.append(f'  "fields": [\n{pairs}\n  ]')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    assert json.loads(text) == fired
    return text


def source_of(obj):
    return inspect.getsource(obj).rstrip() + "\n"


def shared_types_source():
    text = Path(__file__).read_text(encoding="utf8")
    start = text.index("# --- shared types: start ---\n") + len("# --- shared types: start ---\n")
    end = text.index("# --- shared types: end ---")
    return text[start:end].strip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", help="use this Redis (it is FLUSHALLed!)")
    parser.add_argument("--keep-hash-seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    proc = workdir = None
    if args.redis_url:
        from urllib.parse import urlparse

        u = urlparse(args.redis_url)
        host, port = u.hostname or "127.0.0.1", u.port or 6379
        if port == 6379:
            sys.exit("refusing to FLUSHALL a Redis on port 6379; use a private server")
    else:
        proc, port, workdir = start_private_redis()
        host = "127.0.0.1"
    url = f"redis://{host}:{port}/0"

    try:
        r = Resp(host, port)
        r("FLUSHALL")
        monitor = Monitor(host, port)
        monitor.start()
        time.sleep(0.2)

        config = {
            "service_name": "fixture-service",
            "process_name": "fixture-process",
            "bus": {"schema": {"transport": {"redis": {"url": url}}}},
            "apis": {
                "default": {
                    "event_transport": {"redis": {"url": url}},
                    "rpc_transport": {"redis": {"url": url}},
                    "result_transport": {"redis": {"url": url}},
                }
            },
        }
        bus = lightbus.create(config=config)
        for api_class in API_CLASSES:
            bus.client.register_api(api_class())

        # What `lightbus run` does at start-up (and what any client does lazily on
        # its first fire/call): Schema.add_api() -> RedisSchemaTransport.store()
        # for every registered API (our four plus internal.state/internal.metrics).
        from lightbus.utilities.async_tools import block

        block(bus.client.lazy_load_now(), timeout=10)
        time.sleep(0.2)
        schema_cmds = [l for l in monitor.lines if '"schema' in l]

        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        WIRE_DIR.mkdir(parents=True, exist_ok=True)
        for old in SCHEMA_DIR.glob("*.json"):
            old.unlink()

        api_names = sorted(n.decode() for n in r("SMEMBERS", "schemas"))
        ttls = {}
        for api_name in api_names:
            raw = r("GET", f"schema:{api_name}")
            ttls[api_name] = r("TTL", f"schema:{api_name}")
            (SCHEMA_DIR / f"{api_name}.json").write_bytes(raw)
            # sanity: it is what Lightbus would compute locally
            assert json.loads(raw) == bus.client.schema.local_schemas[api_name]

        # Fire one event and capture it (XRANGE + MONITOR)
        n_before = len(monitor.lines)
        event_message = fire_sample_event(bus)
        time.sleep(0.3)
        xadd_lines = [l for l in monitor.lines[n_before:] if '"XADD"' in l or '"xadd"' in l]
        stream = "my_company.auth.*:stream"
        entries = r("XRANGE", stream, "-", "+")
        assert len(entries) == 1, entries
        entry_id, flat = entries[0]
        pairs = [[flat[i].decode("utf8"), flat[i + 1].decode("utf8")] for i in range(0, len(flat), 2)]
        stream_keys = sorted(k.decode() for k in r("KEYS", "*:stream"))

        fired = {
            "stream": stream,
            "stream_keys_present": stream_keys,
            "entry_id": entry_id.decode(),
            "fields": pairs,
            "xadd_monitor_line": xadd_lines[0].split(" ", 3)[-1] if xadd_lines else None,
            "api_name": "my_company.auth",
            "event_name": "user_updated",
            "lightbus_event_message_id": event_message.id,
            "produced_by": "lightbus==1.1.2 tests/interop/make_schema_fixtures.py:fire_sample_event",
        }
        (WIRE_DIR / "fired_event.json").write_text(dump_fired(fired), encoding="utf8")

        bus.client.close()
        monitor.stop()
        write_readme(api_names, ttls, schema_cmds)
        print("wrote", len(api_names), "schema fixtures:", ", ".join(api_names))
        print("wrote", WIRE_DIR / "fired_event.json")
    finally:
        if proc is not None:
            try:
                Resp(host, port)("SHUTDOWN", "NOSAVE")
            except Exception:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(workdir, ignore_errors=True)


def write_readme(api_names, ttls, schema_cmds):
    by_name = {cls.Meta.name: cls for cls in API_CLASSES}
    from lightbus.internal_apis import LightbusMetricsApi, LightbusStateApi

    by_name["internal.state"] = LightbusStateApi
    by_name["internal.metrics"] = LightbusMetricsApi

    out = []
    w = out.append
    w("# Lightbus 1.1.2 schema fixtures\n")
    w(
        "Generated by `tests/interop/make_schema_fixtures.py` (run it with the Lightbus venv:\n"
        "`/opt/lightbus-venv/bin/python tests/interop/make_schema_fixtures.py`). Do not edit by hand.\n"
    )
    w(
        "Each `<api_name>.json` is the exact byte string a real Lightbus 1.1.2 process stored with\n"
        "`SET schema:<api_name> <json>` on a private Redis (read back with `GET`), for the API\n"
        "class shown below. `internal.state` and `internal.metrics` are Lightbus' own internal APIs,\n"
        "which every Lightbus process registers and publishes as well.\n"
    )
    w(
        "Encoding: `json.JSONEncoder(indent=None, sort_keys=True).encode(schema)` "
        "(`lightbus.schema.encoder.json_encode`), i.e. sorted keys, default separators `\", \"` / "
        "`\": \"`, `ensure_ascii=True`. The fixtures were made with PYTHONHASHSEED=0: the order of\n"
        "the `required` list inside a dataclass/attrs/plain-class object schema comes from a Python\n"
        "`set` and differs between processes; compare those lists as sets. Top-level `required`\n"
        "lists follow the parameter order and are stable.\n"
    )
    w("Redis commands Lightbus issued to store them (from MONITOR, timestamps stripped):\n")
    w("```")
    for line in schema_cmds:
        line = line.split(" ", 3)[-1] if line[:1].isdigit() else line
        if line.startswith('"SET" '):
            key = line.split(" ")[1].strip('"')
            line = f'"SET" "{key}" <contents of {key[len("schema:"):]}.json>'
        w(line)
    w("```\n")
    w("TTL right after storing: " + ", ".join(f"`{k}`: {v}" for k, v in ttls.items()) + "\n")
    w("## Shared types used by the definitions\n")
    w("```python")
    w(shared_types_source().rstrip())
    w("```\n")
    for api_name in api_names:
        cls = by_name[api_name]
        w(f"## `{api_name}.json`\n")
        w("```python")
        w(source_of(cls).rstrip())
        w("```\n")
    w("## `../lightbus_wire/fired_event.json`\n")
    w(
        "The fields of the one stream entry (`XRANGE`) that a real Lightbus 1.1.2 wrote when firing\n"
        "`my_company.auth.user_updated` (definition in `my_company.auth.json` above) with the call\n"
        "below, plus the XADD command as seen by MONITOR. Config used: "
        "`service_name: fixture-service`, `process_name: fixture-process`, all transports redis on the\n"
        "private server, everything else default (so `stream_use: per_api`, `max_stream_length: 100000`).\n"
    )
    w("```python")
    w(source_of(fire_sample_event).rstrip())
    w("```\n")
    SCHEMA_DIR.joinpath("README.md").write_text("\n".join(out), encoding="utf8")


if __name__ == "__main__":
    main()
