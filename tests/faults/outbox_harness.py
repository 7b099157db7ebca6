"""Outbox/inbox fault scenarios: producer, relay and consumer processes killed at random,
and the accounting of what the database committed against what Redis and the handlers saw."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import attrs
import redis
import sqlalchemy as sa

from .app.ledger_api import app_metadata, effects, ledger
from .harness import wait_for

APP_DIR = Path(__file__).parent / "app"
STREAM = "ledger.*:stream"

RELAY_CONFIG = {
    "apis": {"default": {"event_transport": {"redis": {
        "socket_timeout": 1, "acknowledgement_timeout": 2, "reclaim_interval": 0.25, "block_ms": 200,
        "consumption_restart_delay": 0.5,
    }}}},
    "bus": {"outbox": {"poll_interval": 0.2}, "runner": {"shutdown_timeout": 10}},
}


@attrs.define
class OutboxResult:
    scenario: str
    transactions: int
    committed: int
    rolled_back: int
    published: int
    handled: Optional[int]
    stream_duplicates: int
    duplicate_effects: Optional[int]
    lost: int
    phantom: int

    def row(self) -> list[str]:
        return [self.scenario, *("-" if v is None else str(v) for v in attrs.astuple(self)[1:])]


OUTBOX_RESULTS: list[OutboxResult] = []
_LIVE: list["Processes"] = []


def format_outbox_table(results: list[OutboxResult]) -> str:
    header = ["scenario", "transactions", "committed", "rolled back", "published", "handled",
              "duplicates in stream", "duplicate effects", "lost", "phantom"]
    rows = [header] + [r.row() for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stop_all_processes() -> None:
    while _LIVE:
        _LIVE.pop().stop()


def prepare_database(url: str) -> sa.Engine:
    from lightbus_sync.outbox import create_tables

    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    create_tables(engine)
    app_metadata.create_all(engine)
    return engine


class Processes:
    """Numbered slots of one kind of process (producers, relays, consumers); ``kill(slot)``
    SIGKILLs one and ``spawn(slot)`` starts it again."""

    def __init__(self, workdir: Path, name: str, command: Callable[[int, int], list[str]], env: dict,
                 ready_marker: str) -> None:
        self.workdir = workdir
        self.name = name
        self.command = command
        self.env = env
        self.ready_marker = ready_marker
        self.processes: dict[int, subprocess.Popen] = {}
        self.log_paths: dict[int, Path] = {}
        self.generation = 0
        self.kills = 0
        _LIVE.append(self)

    def spawn(self, slot: int) -> None:
        self.generation += 1
        path = self.workdir / f"{self.name}-{slot}-{self.generation}.log"
        self.log_paths[slot] = path
        log = open(path, "wb")
        self.processes[slot] = subprocess.Popen(
            self.command(slot, self.generation), cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def start(self, count: int) -> "Processes":
        for slot in range(count):
            self.spawn(slot)
        return self

    def wait_ready(self, slot: int, timeout: float = 30) -> bool:
        """Wait until the process in ``slot`` has printed its ready marker (it is working)."""
        path = self.log_paths[slot]
        return wait_for(lambda: self.ready_marker in path.read_text(errors="replace"), timeout, 0.05)

    def kill(self, slot: int) -> None:
        self.processes[slot].kill()
        self.processes[slot].wait()
        self.kills += 1

    def stop(self, timeout: float = 20) -> list[int]:
        if self in _LIVE:
            _LIVE.remove(self)
        codes = []
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                codes.append(process.wait(timeout))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes

    def logs(self) -> list[str]:
        return [path.read_text(errors="replace") for path in sorted(self.workdir.glob(f"{self.name}-*.log"))]


def base_env(redis_url: str, workdir: Path, **extra: str) -> dict:
    config = workdir / "bus.json"
    config.write_text(json.dumps(RELAY_CONFIG))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    repo = str(Path(__file__).resolve().parents[2])
    env.update(PYTHONPATH=os.pathsep.join([str(APP_DIR), repo, env.get("PYTHONPATH", "")]), PYTHONUNBUFFERED="1",
               LIGHTBUS_REDIS_URL=redis_url, LIGHTBUS_CONFIG=str(config), **extra)
    return env


def producers(workdir: Path, db_url: str, env: dict, seed: int) -> Processes:
    return Processes(workdir, "producer", lambda slot, generation: [
        sys.executable, str(APP_DIR / "outbox_producer.py"), db_url, str(generation), str(seed + generation)],
        env, ready_marker="begin ")


def relays(workdir: Path, db_url: str, env: dict) -> Processes:
    return Processes(workdir, "relay", lambda slot, generation: [
        sys.executable, "-m", "lightbus_sync.cli", "--log-level", "INFO", "outbox", "relay", "--db", db_url],
        env, ready_marker="relaying the outbox")


def consumers(workdir: Path, env: dict) -> Processes:
    """``lightbus-sync run`` of ``ledger_bus``; each start has a new process name, so the
    entries a killed one held are reclaimed by the others."""
    return Processes(workdir, "consumer", lambda slot, generation: [
        sys.executable, "-m", "lightbus_sync.cli", "--log-level", "INFO", "run", "--bus", "ledger_bus",
        "--process-name", f"consumer-{slot}-{generation}", "--threads", "4"],
        env, ready_marker="runner started")


def pending(client: redis.Redis, group: str = "ledger-book") -> int:
    try:
        return client.xpending(STREAM, group)["pending"]
    except redis.ResponseError:
        return 0


def kill_at_random(group: Processes, slots: int, kills: int, rng: random.Random,
                   between: tuple[float, float] = (0.1, 0.6)) -> None:
    """``kills`` times: once every slot's process is working, wait a random time within
    ``between``, SIGKILL a random slot's process and start it again."""
    for _ in range(kills):
        for slot in range(slots):
            group.wait_ready(slot)
        time.sleep(rng.uniform(*between))
        slot = rng.randrange(slots)
        group.kill(slot)
        group.spawn(slot)
    for slot in range(slots):
        group.wait_ready(slot)


def outbox_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM lightbus_outbox")).scalar_one()


def account(scenario: str, engine: sa.Engine, client: redis.Redis, producer_logs: list[str],
            with_consumers: bool = False) -> OutboxResult:
    """Compare the committed ledger with the stream (and the handlers' effects); record the row."""
    begun = {line.split()[1] for log in producer_logs for line in log.splitlines() if line.startswith("begin ")}
    with engine.connect() as connection:
        booked = {(n, j) for n, j in connection.execute(sa.select(ledger.c.n, ledger.c.j))}
        effect_rows = connection.execute(sa.select(effects.c.event_id, effects.c.n, effects.c.j)).all()
    entries = client.xrange(STREAM)
    ids = [fields[b"id"] for _, fields in entries]
    published = {(json.loads(fields[b":n"]), json.loads(fields[b":j"])) for _, fields in entries}
    committed = len({n for n, _ in booked})
    handled = {(n, j) for _, n, j in effect_rows}
    result = OutboxResult(
        scenario=scenario,
        transactions=len(begun),
        committed=committed,
        rolled_back=len(begun) - committed,
        published=len(set(ids)),
        handled=len(handled) if with_consumers else None,
        stream_duplicates=len(ids) - len(set(ids)),
        duplicate_effects=len(effect_rows) - len({e for e, _, _ in effect_rows}) if with_consumers else None,
        lost=len(booked - published) + (len(booked - handled) if with_consumers else 0),
        phantom=len(published - booked) + (len(handled - booked) if with_consumers else 0),
    )
    OUTBOX_RESULTS.append(result)
    return result
