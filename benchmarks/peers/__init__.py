"""Peer comparisons: the same cases run by other libraries, in the same
``python -m benchmarks`` run, on the same private Redis, interleaved with
lightbus_sync's variants like any variant.

Each peer runs with the python of its own virtualenv (``benchmarks/peers/venvs.py``:
built once, cached in ``~/.cache/lightbus_sync/``), so that its dependencies never
meet lightbus_sync's. This package and the modules run in those virtualenvs import
nothing but the standard library and their peer; the benchmark-process side of each
peer case (pre-filling with lightbus_sync, starting and stopping workers, reading
their results) is in ``benchmarks/peers/host.py``.

==============  ===================================================  ==============================
peer            what runs in its venv                                cases
==============  ===================================================  ==============================
Lightbus 1.1.2  ``lightbus_1_1_2.py`` (fire, paced firing),          fire, consume, latency
                ``lightbus run --bus benchmarks.peers.lightbus_bus``
Dramatiq 2.x    ``dramatiq_2.py`` (send; ``dramatiq`` worker CLI on  fire, consume
                ``benchmarks.peers.dramatiq_app``)
==============  ===================================================  ==============================

The protocol of a peer module: ``<venv>/bin/python -m benchmarks.peers.<module>
--redis-url URL --case NAME [--n N ...]``, cwd the repository root; it prints one JSON
object ``{"metric": value, ...}`` on the last line of its stdout, with the metric keys
of the case (``rate``, ``p50_us``, ``cpu_us``...).

``PEERS`` lists the peers and, for each case they run, the lightbus_sync variant they
are compared with: ``cases.build_cases`` adds one variant per (peer, case) and the
comparison (``framework.Comparison``) printed in the "lightbus_sync vs peers" table.
A peer whose venv cannot be had still gets its variants, not run, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import venvs

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PeerCase:
    case: str  # the benchmarks case
    variant: str  # variant name after the peer's title, e.g. "fire() (sync API)"
    host: str  # function in benchmarks.peers.host: (ctx, status) -> metrics
    compare_with: str  # the lightbus_sync variant of that case it is compared with
    metrics: tuple[str, ...]  # metric keys compared
    description: str = ""
    ratio_to_baseline: bool = True  # False: another rate than the case's baseline


@dataclass(frozen=True)
class Peer:
    key: str
    title: str  # "{version}" is filled in from the venv
    spec: venvs.VenvSpec
    module: str
    cases: tuple[PeerCase, ...]
    #: Repetitions in a full / quick run (each repetition starts its processes anew).
    reps: int = 5
    quick_reps: int = 1
    #: In the title when the venv (which tells the exact version) is not there.
    fallback_version: str = "?"


PEERS: dict[str, Peer] = {
    "lightbus": Peer(
        key="lightbus",
        title="Lightbus {version}",
        spec=venvs.LIGHTBUS,
        module="benchmarks.peers.lightbus_1_1_2",
        fallback_version="1.1.2",
        cases=(
            PeerCase("fire", "fire() (sync API)", "lightbus_fire", "fire",
                     ("rate", "p50_us", "p99_us", "cpu_us"),
                     "bus.bench_auth.user_created.fire(...) with Lightbus's sync API, own venv"),
            PeerCase("consume", "lightbus run (sync handler)", "lightbus_consume", "runner threads=8",
                     ("rate", "cpu_us"),
                     "`lightbus run` draining the pre-filled stream, no-op sync handler"),
            PeerCase("latency", "fire -> lightbus run @ 200/s", "lightbus_latency",
                     "fire -> lightbus-sync run @ 200/s", ("p50_us", "p99_us", "max_us"),
                     "fire() in one process, `lightbus run` (sync handler) in another, 200 events/s",
                     ratio_to_baseline=False),
        ),
    ),
    "dramatiq": Peer(
        key="dramatiq",
        title="Dramatiq {version}",
        spec=venvs.DRAMATIQ,
        module="benchmarks.peers.dramatiq_2",
        fallback_version="2.x",
        cases=(
            PeerCase("fire", "actor.send()", "dramatiq_fire", "fire", ("rate", "p50_us", "p99_us", "cpu_us"),
                     "user_created.send(...) on Dramatiq's RedisBroker, own venv"),
            PeerCase("consume", "worker (1 process, 8 threads)", "dramatiq_consume", "runner threads=8",
                     ("rate", "cpu_us"),
                     "`dramatiq --processes 1 --threads 8` draining N sent messages, no-op actor"),
        ),
    ),
}


@dataclass
class PeerStatus:
    """A peer as found for this run: its venv (or why there is none)."""

    peer: Peer
    venv: Optional[venvs.VenvStatus] = None
    skipped: str = ""  # why the peer does not run at all (e.g. --no-peers)

    @property
    def title(self) -> str:
        version = self.venv.version if self.venv and self.venv.version else self.peer.fallback_version
        return self.peer.title.format(version=version)

    @property
    def problem(self) -> str:
        if self.skipped:
            return self.skipped
        if self.venv is None:
            return "its virtualenv was not looked for"
        return self.venv.problem

    @property
    def python(self) -> Optional[Path]:
        return self.venv.python if self.venv and self.venv.ok and not self.skipped else None

    def variant_name(self, peer_case: PeerCase) -> str:
        return f"{self.title} {peer_case.variant}"


def prepare(names: Optional[list[str]] = None, skip: str = "", log=print) -> dict[str, PeerStatus]:
    """Find (or build, once) each peer's venv; ``skip`` marks every peer not run."""
    statuses = {}
    for key, peer in PEERS.items():
        if names is not None and key not in names:
            continue
        if skip:
            statuses[key] = PeerStatus(peer, skipped=skip)
            continue
        status = PeerStatus(peer, venvs.ensure(peer.spec, log=log))
        if status.venv.ok:
            log(f"   peer {status.title}: {status.venv.directory} ({status.venv.versions})")
        else:
            log(f"   peer {peer.key}: NOT RUN: {status.problem}")
        statuses[key] = status
    return statuses


def peer_env(redis_url: str, extra: Optional[dict] = None) -> dict[str, str]:
    """The environment of a peer process: no LIGHTBUS_* (the command line decides),
    this repository on PYTHONPATH (for ``benchmarks.peers``), the private Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    env.pop("PYTHONHOME", None)
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["BENCH_REDIS_URL"] = redis_url
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def run_peer(status: PeerStatus, redis_url: str, args: list[str], timeout: float = 300) -> dict[str, float]:
    """Run the peer module once with ``args`` in its venv; return its JSON metrics."""
    command = [str(status.python), "-m", status.peer.module, "--redis-url", redis_url, *args]
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                         env=peer_env(redis_url), stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} exited with {out.returncode}:\n"
                           f"{(out.stdout + out.stderr).strip()[-3000:]}")
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{' '.join(command[2:])} printed nothing:\n{out.stderr.strip()[-3000:]}")
    return json.loads(lines[-1])
