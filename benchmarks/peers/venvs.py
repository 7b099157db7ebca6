"""The peers' virtualenvs: found, verified, built once and cached (stdlib only).

Each peer runs with the python of its own virtualenv, so that its dependencies never
meet lightbus_sync's. They live in the same cache as the interop tests' Lightbus
virtualenv (``tests/interop/conftest.py``), and are built the same way::

    python3.11 -m venv DIR && DIR/bin/pip install -r benchmarks/peers/<peer>.requirements.txt

under an ``fcntl`` lock (``DIR.lock``), marked ``.lightbus_sync_owned`` when created
here and ``.lightbus_sync_complete`` once verified. The Lightbus one *is* the interop
tests' (same directory, lock, markers and requirements: ``lightbus==1.1.2``,
``aioredis<2``), so whichever of the two builds it first, the other reuses it.

=========  =========================================================  ================================
peer       directory (default)                                        override
=========  =========================================================  ================================
lightbus   ``~/.cache/lightbus_sync/lightbus-1.1.2``                  ``$LIGHTBUS_SYNC_LIGHTBUS_VENV``
dramatiq   ``~/.cache/lightbus_sync/dramatiq-2``                      ``$LIGHTBUS_SYNC_DRAMATIQ_VENV``
=========  =========================================================  ================================

(``~/.cache`` is ``$XDG_CACHE_HOME`` when set.) A directory that exists but was not
made here, and does not verify, is left alone: the peer is then reported as not run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent

#: The interop tests' marker names (tests/interop/conftest.py): keep them identical.
OWNED_MARKER = ".lightbus_sync_owned"
COMPLETE_MARKER = ".lightbus_sync_complete"


@dataclass(frozen=True)
class VenvSpec:
    name: str  # directory name under the cache
    requirements_file: str  # beside this module
    env_var: str  # a directory to use instead
    check: str  # python code printing the installed version (first word)
    version_prefix: str  # the version printed must start with this
    scripts: tuple[str, ...]  # console scripts that must exist in bin/

    @property
    def requirements(self) -> list[str]:
        lines = (HERE / self.requirements_file).read_text().splitlines()
        return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]

    def directory(self) -> Path:
        explicit = os.environ.get(self.env_var)
        if explicit:
            return Path(explicit).expanduser().resolve()
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache / "lightbus_sync" / self.name


LIGHTBUS = VenvSpec(
    name="lightbus-1.1.2",
    requirements_file="lightbus_1_1_2.requirements.txt",
    env_var="LIGHTBUS_SYNC_LIGHTBUS_VENV",
    check="import importlib.metadata as m, lightbus, aioredis; print(m.version('lightbus'), m.version('aioredis'))",
    version_prefix="1.1.2",
    scripts=("lightbus",),
)

DRAMATIQ = VenvSpec(
    name="dramatiq-2",
    requirements_file="dramatiq_2.requirements.txt",
    env_var="LIGHTBUS_SYNC_DRAMATIQ_VENV",
    check="import importlib.metadata as m, dramatiq, redis; print(m.version('dramatiq'), m.version('redis'))",
    version_prefix="2.",
    scripts=("dramatiq",),
)


@dataclass
class VenvStatus:
    spec: VenvSpec
    directory: Path
    python: Optional[Path]  # None when unusable
    versions: str = ""  # what ``spec.check`` printed, e.g. "1.1.2 1.3.1"
    problem: str = ""  # why it is unusable
    built_now: bool = False

    @property
    def ok(self) -> bool:
        return self.python is not None

    @property
    def version(self) -> str:
        return self.versions.split()[0] if self.versions else ""


def verify(spec: VenvSpec, directory: Path) -> tuple[bool, str]:
    """(usable, detail): the venv imports the peer at the wanted version and has its CLI."""
    python = directory / "bin" / "python"
    missing = [s for s in ("python", *spec.scripts) if not (directory / "bin" / s).exists()]
    if missing:
        return False, f"{directory} has no bin/{', bin/'.join(missing)}"
    try:
        result = subprocess.run([str(python), "-c", spec.check], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{python}: {exc}"
    if result.returncode != 0:
        return False, (result.stdout + result.stderr).strip()[-2000:]
    if not result.stdout.strip().startswith(spec.version_prefix):
        return False, f"{directory} has {result.stdout.strip()!r}, need {spec.version_prefix}*"
    return True, result.stdout.strip()


def _base_python() -> str:
    """Python 3.11 (Lightbus 1.1.2 does not run on 3.12+: asyncio APIs it uses are gone)."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if not found:
        raise RuntimeError(f"no Python 3.11 to build the virtualenv with (this is {sys.version.split()[0]})")
    return found


def _run(command: list[str], what: str, timeout: float) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{output[-3000:]}")


def build(spec: VenvSpec, directory: Path, log=print) -> str:
    """Return ``verify``'s detail for a usable venv at ``directory``, building it if needed."""
    usable, detail = verify(spec, directory)
    if usable:  # the usual case: built by an earlier run (or by the interop tests)
        return detail
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = directory.with_name(directory.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run (or the tests) may be building it
        usable, detail = verify(spec, directory)
        if usable:
            return detail
        if directory.exists():
            if not (directory / OWNED_MARKER).exists():
                raise RuntimeError(
                    f"{directory} exists but is not usable ({detail}) and was not built by lightbus_sync, "
                    f"so it is left alone: remove it or set ${spec.env_var} to another directory"
                )
            shutil.rmtree(directory)  # a build of ours that did not finish
        log(f"   building {directory} (once): pip install {' '.join(spec.requirements)}")
        _run([_base_python(), "-m", "venv", str(directory)], "creating the virtualenv", 300)
        (directory / OWNED_MARKER).write_text("built by lightbus_sync (benchmarks/peers/venvs.py)\n")
        _run([str(directory / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
              "--quiet", *spec.requirements], f"pip install {' '.join(spec.requirements)}", 900)
        usable, detail = verify(spec, directory)
        if not usable:
            raise RuntimeError(f"the freshly built virtualenv does not work: {detail}")
        (directory / COMPLETE_MARKER).write_text(detail + "\n")
        return detail


def ensure(spec: VenvSpec, log=print) -> VenvStatus:
    """Find, verify or build ``spec``'s venv; never raises (the problem is in the status)."""
    directory = spec.directory()
    existed = (directory / COMPLETE_MARKER).exists()
    try:
        detail = build(spec, directory, log)
    except Exception as exc:  # noqa: BLE001 -- reported in the peer's rows
        first = str(exc).strip().splitlines()
        return VenvStatus(spec, directory, None, problem=f"{type(exc).__name__}: {' '.join(first[:3])[:400]}")
    return VenvStatus(spec, directory, directory / "bin" / "python", versions=detail, built_now=not existed)
