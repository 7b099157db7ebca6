"""Interop with the REAL Lightbus 1.1.2 (its own virtualenv, see conftest.py): real
``lightbus run`` workers and Lightbus producer scripts beside lightbus_sync, on the
suite's redis-server, with ONE YAML file both sides load.

1. lightbus_sync fires -> a Lightbus listener receives, validating against the schema
   lightbus_sync published (no warnings, the worker stays up);
2. Lightbus fires -> lightbus_sync runners receive, cast and validate (with the remote
   schema Lightbus published, and with a local definition);
3. a Lightbus worker and a lightbus_sync runner in ONE consumer group share the work,
   and each reclaims what the other left pending after ``kill -9``;
4. ``lightbus dumpschema`` shows lightbus_sync's APIs and ``lightbus-sync dumpschema``
   shows Lightbus's.

1-3 run on per-API and on per-event streams (``stream_use`` in the shared YAML).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest

import lightbus_sync
from lightbus_sync.runner import dead_letter_stream
from lightbus_sync.schema import api_schema

from interop_harness import (
    LIGHTBUS_TROUBLE,
    ProcessGroup,
    has_consumer,
    pending_by_consumer,
    read_jsonl,
    wait_until,
    write_config,
)
from interop_types import SAMPLES, Point
from sync_defs import Money, SyncTypesApi

pytestmark = pytest.mark.timeout(300)  # includes building the Lightbus venv on a first run

STREAM_USES = ["per_api", "per_event"]


def stream_of(api_name: str, event_name: str, stream_use: str) -> str:
    return f"{api_name}.*:stream" if stream_use == "per_api" else f"{api_name}.{event_name}:stream"


def class_required_as_sets(node: Any) -> Any:
    """Lightbus orders the ``required`` list of a class's object schema by a Python set
    (random per process): compare those lists sorted. Top-level lists are stable."""
    if isinstance(node, dict):
        out = {k: class_required_as_sets(v) for k, v in node.items()}
        if "required" in node and not str(node.get("title", "")).startswith(("Event ", "RPC ")):
            out["required"] = sorted(node["required"])
        return out
    if isinstance(node, list):
        return [class_required_as_sets(v) for v in node]
    return node


# --- what a receiver should hold ---------------------------------------------------------


def _sorted_dict(value: dict) -> dict:
    """A dict as it comes out of JSON with sorted keys."""
    return dict(sorted(value.items()))


#: How a value arrives, per receiver, where it differs from what was fired.
AS_LIGHTBUS_CASTS = {
    "uid": str,  # Lightbus 1.1.2 on Python 3.11 does not cast to UUID (it stays a str)
    "mapping": _sorted_dict,
}
AS_REMOTE_SCHEMA_GIVES = {  # lightbus_sync without the API's definition: types the schema can say
    "uid": str,
    "color": lambda c: c.value,
    "address": lambda a: _sorted_dict(dataclasses.asdict(a)),
    "mapping": _sorted_dict,
}
AS_LOCAL_DEFINITION_GIVES = {"mapping": _sorted_dict}


def expected_params(sample: dict[str, Any], conversions: dict[str, Callable[[Any], Any]]) -> dict[str, dict]:
    out = {}
    for name, value in sample.items():
        value = conversions.get(name, lambda v: v)(value)
        out[name] = {"type": type(value).__name__, "repr": repr(value)}
    return out


def assert_received(lines: list[dict], fired_ids: list[str], conversions: dict, *, api: str, version: int) -> None:
    """One line per fired event (in any order: a runner has several worker threads)."""
    by_id = {line["id"]: line for line in lines}
    assert len(lines) == len(by_id) and sorted(by_id) == sorted(fired_ids)
    for event_id, sample in zip(fired_ids, SAMPLES):
        line = by_id[event_id]
        assert (line["api"], line["event"], line["version"]) == (api, "typed", version)
        assert line["params"] == expected_params(sample, conversions)


def broken_copy_of_last_typed(redis_client, stream: str) -> tuple[str, dict]:
    """(event id, fields): the last ``typed`` entry of ``stream`` with a new id and an int
    parameter holding a string, which no schema-respecting producer would send."""
    entries = [fields for _, fields in redis_client.xrange(stream) if fields.get(b"event_name") == b"typed"]
    fields = dict(entries[-1])
    event_id = str(uuid.uuid1())
    fields[b"id"] = event_id.encode()
    fields[b":i"] = b'"not a number"'
    return event_id, fields


def plain_log(proc) -> str:
    """A process's output without the terminal colour codes Lightbus prints."""
    return re.sub(r"\x1b\[[0-9;]*m", "", proc.log())


def assert_quiet(proc) -> None:
    """No validation warning, no error, no shutdown in a Lightbus process's output."""
    log = plain_log(proc)
    for trouble in LIGHTBUS_TROUBLE:
        assert trouble not in log, f"{proc.name} printed {trouble!r}:\n{proc.tail(60)}"


def assert_loaded_schema_at_start(proc, api_name: str) -> None:
    """The Lightbus worker had ``api_name``'s schema when it started (so it validated)."""
    lines = [l for l in plain_log(proc).splitlines() if "Loaded the following remote schemas" in l]
    assert lines and api_name in lines[0], f"{proc.name} did not load {api_name}'s schema:\n{proc.tail(60)}"


# --- 1. lightbus_sync -> Lightbus ----------------------------------------------------------


@pytest.mark.parametrize("stream_use", STREAM_USES)
def test_lightbus_listener_receives_and_validates_events_fired_by_lightbus_sync(
    stream_use, procs: ProcessGroup, redis_url, redis_client, tmp_path
):
    config = write_config(tmp_path / "lightbus.yaml", redis_url, service_name="lb-listener",
                          process_name="lbw1", stream_use=stream_use)
    bus = lightbus_sync.create(config_file=config, service_name="sync-firer", process_name="sync-fire1")
    try:
        # The first fire publishes the API's schema; the Lightbus worker starts after it, so
        # it loads the schema at start-up and validates every event against it.
        bus.interop.sync_types.ping.fire()
        published = json.loads(redis_client.get("schema:interop.sync_types"))
        assert published == json.loads(json.dumps(api_schema(SyncTypesApi.definition)))

        worker = procs.lightbus_worker("lightbus-listener", "lb_listener_bus", config, out="lightbus")
        stream = stream_of("interop.sync_types", "typed", stream_use)
        extras_stream = stream_of("interop.sync_types", "extras", stream_use)

        def worker_ready():
            assert worker.alive(), f"the Lightbus worker exited:\n{worker.tail()}"
            return (has_consumer(redis_client, [stream], "lb-listener-recorder", "lbw1")
                    and has_consumer(redis_client, [extras_stream], "lb-listener-extras_recorder", "lbw1"))

        wait_until(worker_ready, 30, "the Lightbus worker's consumers", procs.diagnostics)

        first = {k: v for k, v in SAMPLES[0].items() if k != "flag"}  # the default travels
        fired = [bus.interop.sync_types.typed.fire(**first), bus.interop.sync_types.typed.fire(**SAMPLES[1])]
        # A 3-tuple for tuple[int, ...] (Lightbus's own schema would allow exactly 2 items)
        # and an attrs instance (Lightbus's schema would require its defaulted field).
        extras = bus.interop.sync_types.extras.fire(
            numbers=(1, 2, 3), money=Money(Decimal("12.50")), point=Point(1.5, -2.0), raw=b"\x00\xffbin")
        out = procs.out_path("lightbus")
        lines = wait_until(lambda: len(read_jsonl(out)) >= 3 and read_jsonl(out), 20,
                           "the Lightbus handlers' three lines", procs.diagnostics)
        assert all(line["role"] == "lightbus" for line in lines)
        typed = [line for line in lines if line["event"] == "typed"]
        assert_received(typed, [m.id for m in fired], AS_LIGHTBUS_CASTS, api="interop.sync_types", version=2)
        (extra,) = [line for line in lines if line["event"] == "extras"]
        assert extra["id"] == extras.id
        assert extra["params"] == expected_params(
            {"numbers": [1, 2, 3], "money": {"amount": "12.50", "currency": "EUR"}, "point": Point(1.5, -2.0),
             "raw": b"\x00\xffbin"}, {})

        time.sleep(0.3)
        assert worker.alive(), worker.tail()
        assert_loaded_schema_at_start(worker, "interop.sync_types")
        assert_quiet(worker)
        assert redis_client.xpending(stream, "lb-listener-recorder")["pending"] == 0
        assert redis_client.xpending(extras_stream, "lb-listener-extras_recorder")["pending"] == 0

        # Control: validation really is on, against lightbus_sync's schema. An entry that
        # breaks it (an int parameter holding a string) stops the Lightbus worker.
        redis_client.xadd(stream, broken_copy_of_last_typed(redis_client, stream)[1])
        assert worker.wait(20) != 0
        assert "ValidationError" in worker.log(), worker.tail()
        assert "'not a number' is not of type 'integer'" in worker.log()
    finally:
        bus.close()


def test_a_stopped_runners_group_survives_a_lightbus_listener_starting_on_its_stream(
    procs: ProcessGroup, redis_url, redis_client, tmp_path
):
    """A Lightbus listener destroys every group of its stream that has no consumer. A
    lightbus_sync runner never leaves its group empty (its stop keeps the group's last
    consumer), so events fired while the service is down still reach it afterwards."""
    config = write_config(tmp_path / "lightbus.yaml", redis_url, service_name="lb-listener", process_name="lbw1")
    stream = "interop.sync_types.*:stream"
    received: list[str] = []

    def make_bus():
        bus = lightbus_sync.create(config_file=config, service_name="sync-svc", process_name="sync-a")
        bus.interop.sync_types.typed.listen(lambda event_message, **kw: received.append(event_message.id),
                                            listener_name="keeper")
        return bus

    bus = make_bus()
    try:
        bus.interop.sync_types.ping.fire()  # publishes the schema the Lightbus worker loads
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
        assert has_consumer(redis_client, [stream], "sync-svc-keeper", "sync-a")
        redis_client.xgroup_create(stream, "no-consumer-group", id="$")  # created, never read
        fired_while_down = bus.interop.sync_types.typed.fire(**SAMPLES[1])
    finally:
        bus.close()

    worker = procs.lightbus_worker("lightbus-listener", "lb_listener_bus", config, out="lightbus")
    wait_until(lambda: has_consumer(redis_client, [stream], "lb-listener-recorder", "lbw1"), 30,
               "the Lightbus worker's consumer", procs.diagnostics)
    groups = {g["name"].decode() for g in redis_client.xinfo_groups(stream)}
    assert "no-consumer-group" not in groups  # destroyed by the Lightbus listener's clean-up
    assert "sync-svc-keeper" in groups

    bus = make_bus()
    try:
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            wait_until(lambda: received, 10, "the event fired while the runner was down")
        assert received == [fired_while_down.id]
    finally:
        bus.close()
    assert worker.alive()
    assert_loaded_schema_at_start(worker, "interop.sync_types")
    assert_quiet(worker)


# --- 2. Lightbus -> lightbus_sync ----------------------------------------------------------


@pytest.mark.parametrize("stream_use", STREAM_USES)
def test_lightbus_sync_runners_receive_cast_and_validate_events_fired_by_lightbus(
    stream_use, procs: ProcessGroup, redis_url, redis_client, tmp_path
):
    config = write_config(tmp_path / "lightbus.yaml", redis_url, service_name="sync-listeners",
                          process_name="unused", stream_use=stream_use)
    # A Lightbus producer stores its API's schema on its first fire.
    procs.run_lightbus_script("lb_fire.py", str(config), "warmup")
    lightbus_schema = json.loads(redis_client.get("schema:interop.lb_types"))
    stream = stream_of("interop.lb_types", "typed", stream_use)

    # One runner without the API's definition (built from Lightbus's schema on the bus)...
    remote = procs.sync_runner("sync-remote", "sync_remote_bus", config, out="sync-remote", process_name="remote1")
    wait_until(lambda: has_consumer(redis_client, [stream], "sync-listeners-remote_recorder", "remote1"),
               20, "the remote-schema runner's consumer", procs.diagnostics)
    # ...and one that defines it (its runner publishes its own schema of the API).
    local = procs.sync_runner("sync-local", "sync_local_bus", config, out="sync-local", process_name="local1")
    wait_until(lambda: has_consumer(redis_client, [stream], "sync-listeners-local_recorder", "local1"),
               20, "the local-definition runner's consumer", procs.diagnostics)
    ours = json.loads(redis_client.get("schema:interop.lb_types"))
    # The same definition gives the same schema.
    assert class_required_as_sets(ours) == class_required_as_sets(lightbus_schema)

    result = procs.run_lightbus_script("lb_fire.py", str(config), "typed")
    fired_ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert len(fired_ids) == len(SAMPLES)

    for name, conversions in (("sync-remote", AS_REMOTE_SCHEMA_GIVES), ("sync-local", AS_LOCAL_DEFINITION_GIVES)):
        out = procs.out_path(name)
        lines = wait_until(lambda: len(read_jsonl(out)) >= 2 and read_jsonl(out), 20,
                           f"{name}'s two lines", procs.diagnostics)
        assert_received(lines, fired_ids, conversions, api="interop.lb_types", version=3)

    # Control: both validate against the schema (the remote runner: Lightbus's own). An
    # entry Lightbus would never send (an int parameter holding a string) is dead-lettered.
    bad_id, fields = broken_copy_of_last_typed(redis_client, stream)
    redis_client.xadd(stream, fields)
    dead = dead_letter_stream(stream)
    entries = wait_until(lambda: len(redis_client.xrange(dead)) >= 2 and redis_client.xrange(dead), 20,
                         "two dead-lettered entries", procs.diagnostics)
    by_group = {e[1][b"dl:group"].decode(): e[1] for e in entries}
    assert sorted(by_group) == ["sync-listeners-local_recorder", "sync-listeners-remote_recorder"]
    for meta in by_group.values():
        assert meta[b"dl:reason"] == b"invalid" and meta[b"dl:event_id"] == bad_id.encode()
        assert b"schema" in meta[b"dl:error"]
    for name in ("sync-remote", "sync-local"):
        assert len(read_jsonl(procs.out_path(name))) == 2

    assert remote.stop() == 0, remote.tail()
    assert local.stop() == 0, local.tail()


# --- 3. one consumer group, both frameworks -------------------------------------------------


SHARED_GROUP = "shared-svc-worker"  # {service_name}-{listener_name}, the same on both sides


class SharedGroup:
    """A Lightbus worker and a lightbus_sync runner as consumers ``lbw1`` / ``sync1`` of
    one group, on the work event of ``interop.shared``; the test fires with ``bus``."""

    def __init__(self, procs: ProcessGroup, redis_client, config: Path, stream: str, bus) -> None:
        self.procs = procs
        self.redis = redis_client
        self.config = config
        self.stream = stream
        self.bus = bus
        self.next_n = 0
        self.fired: list[int] = []
        self.sync = None
        self.lightbus = None

    def start_sync(self):
        self.sync = self.procs.sync_runner("sync-worker", "sync_shared_bus", self.config, out="sync",
                                           process_name="sync1")
        self.wait_for_consumer("sync1", self.sync)
        return self.sync

    def start_lightbus(self):
        self.lightbus = self.procs.lightbus_worker("lightbus-worker", "lb_shared_bus", self.config,
                                                   out="lightbus", process_name="lbw1")
        self.wait_for_consumer("lbw1", self.lightbus)
        return self.lightbus

    def wait_for_consumer(self, name: str, proc) -> None:
        def ready():
            assert proc.alive(), f"{proc.name} exited:\n{proc.tail()}"
            return has_consumer(self.redis, [self.stream], SHARED_GROUP, name)

        wait_until(ready, 30, f"consumer {name} in {SHARED_GROUP}", self.procs.diagnostics)

    def fire(self, hang_in: str = "") -> int:
        n = self.next_n
        self.next_n += 1
        self.bus.interop.shared.work.fire(n=n, hang_in=hang_in)
        self.fired.append(n)
        return n

    def lines(self) -> list[dict]:
        return read_jsonl(self.procs.out_path("sync")) + read_jsonl(self.procs.out_path("lightbus"))

    def handled(self) -> dict[int, list[str]]:
        """n -> the roles that handled it (completed the handler)."""
        out: dict[int, list[str]] = {}
        for line in self.lines():
            if line["state"] == "handled":
                out.setdefault(line["values"]["n"], []).append(line["role"])
        return out

    def hanging(self, role: str) -> set[int]:
        return {line["values"]["n"] for line in self.lines() if line["state"] == "hanging" and line["role"] == role}

    def wait_all_handled(self, numbers, timeout: float) -> dict[int, list[str]]:
        numbers = set(numbers)
        return wait_until(lambda: numbers <= set(self.handled()) and self.handled(), timeout,
                          f"events {sorted(numbers)} handled", self.procs.diagnostics)

    def fire_until_hanging(self, hang_in: str, count: int) -> list[int]:
        """Fire events whose handler hangs in ``hang_in`` until ``count`` of them hang
        there (the group hands each to whichever consumer asks first)."""
        batch = []
        for _ in range(40):
            batch.append(self.fire(hang_in))
            time.sleep(0.03)
            if len(self.hanging(hang_in)) >= count:
                break
        wait_until(lambda: len(self.hanging(hang_in)) >= count, 10, f"{count} events hanging in {hang_in}",
                   self.procs.diagnostics)
        return batch


@pytest.mark.parametrize("stream_use", STREAM_USES)
def test_lightbus_worker_and_lightbus_sync_runner_share_one_consumer_group(
    stream_use, procs: ProcessGroup, redis_url, redis_client, tmp_path
):
    config = write_config(tmp_path / "lightbus.yaml", redis_url, service_name="shared-svc",
                          process_name="set-per-process", stream_use=stream_use,
                          acknowledgement_timeout=2, reclaim_interval=1)
    stream = stream_of("interop.shared", "work", stream_use)
    bus = lightbus_sync.create(config_file=config, service_name="shared-firer", process_name="firer1")
    group = SharedGroup(procs, redis_client, config, stream, bus)
    try:
        # The runner publishes interop.shared's schema as it starts; the Lightbus worker,
        # started next, loads it (and validates against it).
        group.start_sync()
        lightbus = group.start_lightbus()

        # Normal operation: every event handled once, by one of the two.
        for _ in range(50):
            group.fire()
            time.sleep(0.02)
        handled = group.wait_all_handled(range(50), 20)
        assert sorted(handled) == list(range(50))
        duplicates = {n: roles for n, roles in handled.items() if len(roles) > 1}
        assert not duplicates
        shares = {role: sum(1 for roles in handled.values() if role in roles) for role in ("sync", "lightbus")}
        assert shares["sync"] > 0 and shares["lightbus"] > 0, shares

        # kill -9 the lightbus_sync runner while handlers hang: Lightbus reclaims its entries
        # (XPENDING + XCLAIM) once they are idle past acknowledgement_timeout. While the runner
        # lived, it renewed their leases, so Lightbus left them alone.
        batch = group.fire_until_hanging("sync", 2)
        held_by_sync = group.hanging("sync")
        time.sleep(3.5)  # > acknowledgement_timeout + reclaim_interval
        early = {n: roles for n, roles in group.handled().items() if n in held_by_sync}
        assert not early, f"Lightbus took entries a live lightbus_sync runner was handling: {early}"
        assert pending_by_consumer(redis_client, stream, SHARED_GROUP).get("sync1", 0) >= len(held_by_sync)
        group.sync.kill9()
        handled = group.wait_all_handled(batch, 20)
        assert all(handled[n] == ["lightbus"] for n in held_by_sync), handled
        assert "Abandoned by sync1" in plain_log(lightbus)  # Lightbus's XPENDING + XCLAIM
        assert lightbus.alive()

        # kill -9 the Lightbus worker while its handler hangs: the (restarted) runner
        # reclaims its entries with XAUTOCLAIM once idle past acknowledgement_timeout.
        group.start_sync()
        batch = group.fire_until_hanging("lightbus", 1)
        held_by_lightbus = group.hanging("lightbus")
        lightbus.kill9()
        handled = group.wait_all_handled(batch, 20)
        assert all(handled[n] == ["sync"] for n in held_by_lightbus), handled

        # Overall: every event fired was completed exactly once, nothing is left pending.
        handled = group.handled()
        assert sorted(handled) == group.fired
        assert {n: r for n, r in handled.items() if len(r) > 1} == {}
        wait_until(lambda: redis_client.xpending(stream, SHARED_GROUP)["pending"] == 0, 10,
                   "no pending entries", procs.diagnostics)
        assert_loaded_schema_at_start(lightbus, "interop.shared")
        assert_quiet(lightbus)
        assert group.sync.stop() == 0, group.sync.tail()
    finally:
        bus.close()


# --- 4. dumpschema, both ways ------------------------------------------------------------------

LOAD_SCHEMA_DIR = """
import json, sys
from pathlib import Path
from lightbus.schema.schema import Schema
schema = Schema(schema_transport=None)
schema.load_local(Path(sys.argv[1]))
print(json.dumps(schema.local_schemas, sort_keys=True))
"""


def test_each_dumpschema_shows_the_other_sides_apis(procs: ProcessGroup, redis_url, redis_client, tmp_path):
    config = write_config(tmp_path / "lightbus.yaml", redis_url, service_name="dumper", process_name="dump1")
    bus = lightbus_sync.create(config_file=config)
    try:
        bus.interop.sync_types.ping.fire()  # publishes interop.sync_types
    finally:
        bus.close()
    procs.run_lightbus_script("lb_fire.py", str(config), "warmup")  # publishes interop.lb_types
    lightbus_doc = json.loads(redis_client.get("schema:interop.lb_types"))
    sync_doc = json.loads(json.dumps(api_schema(SyncTypesApi.definition)))

    # Lightbus's CLI (its bus module defines no API) shows lightbus_sync's API...
    lightbus_cmd = [procs.lightbus_bin, "dumpschema", "--bus", "lb_plain_bus", "--config", str(config)]
    theirs = procs.run_cli(lightbus_cmd)
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr
    their_dump = json.loads(theirs.stdout)
    assert their_dump["interop.sync_types"] == sync_doc
    assert their_dump["interop.lb_types"] == lightbus_doc

    # ...and lightbus_sync's CLI shows Lightbus's (its internal APIs too), in the same format.
    sync_cmd = [sys.executable, "-m", "lightbus_sync.cli", "dumpschema", "--config", str(config)]
    ours = procs.run_cli(sync_cmd, sync=True)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    our_dump = json.loads(ours.stdout)
    assert our_dump["interop.lb_types"] == lightbus_doc
    assert our_dump["interop.sync_types"] == sync_doc
    assert {"internal.state", "internal.metrics"} <= set(our_dump)
    assert our_dump == their_dump
    assert ours.stdout == theirs.stdout  # human_readable: indent 2, sorted keys, ASCII

    # Directory dumps (one <api>.json each) load on the other side.
    their_dir, our_dir = tmp_path / "lightbus-dump", tmp_path / "sync-dump"
    their_dir.mkdir()  # Lightbus writes one file per API only into an existing directory
    assert procs.run_cli(lightbus_cmd + ["--out", str(their_dir)]).returncode == 0
    assert procs.run_cli(sync_cmd + ["--out", f"{our_dir}/"], sync=True).returncode == 0
    assert sorted(p.name for p in our_dir.iterdir()) == sorted(p.name for p in their_dir.iterdir())

    reader = lightbus_sync.create(config_file=config)
    try:
        loaded = reader.schemas.load_files(their_dir)
        assert {"interop.lb_types", "interop.sync_types"} <= set(loaded)
        assert reader.schemas.remote_document("interop.lb_types", load=False) == lightbus_doc
    finally:
        reader.close()
    loaded_by_lightbus = json.loads(procs.run_lightbus_script("-c", LOAD_SCHEMA_DIR, str(our_dir)).stdout)
    assert loaded_by_lightbus == our_dump
