"""Fixtures of the interop tests: a virtualenv with the REAL Lightbus 1.1.2, and the
processes (real Lightbus workers and scripts, lightbus_sync runners) the tests start.

The virtualenv is built once and cached, in ``$LIGHTBUS_SYNC_LIGHTBUS_VENV`` or else
``$XDG_CACHE_HOME/lightbus_sync/lightbus-1.1.2`` (``~/.cache/...``)::

    python3.11 -m venv DIR && DIR/bin/pip install lightbus==1.1.2 'aioredis<2'

under an ``fcntl`` lock (``DIR.lock``), so parallel test runs never build it twice or
use a half-built one. If it cannot be built, every interop test FAILS saying why.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from interop_harness import ProcessGroup

LIGHTBUS_VERSION = "1.1.2"
LIGHTBUS_REQUIREMENTS = [f"lightbus=={LIGHTBUS_VERSION}", "aioredis<2"]
ENV_VENV = "LIGHTBUS_SYNC_LIGHTBUS_VENV"
#: Written into a virtualenv this fixture created (so only those are ever deleted)...
OWNED_MARKER = ".lightbus_sync_owned"
#: ...and this one once it was installed and verified.
COMPLETE_MARKER = ".lightbus_sync_complete"
_CHECK = (
    "import importlib.metadata as m, lightbus, aioredis; "
    "print(m.version('lightbus'), m.version('aioredis'))"
)


def venv_dir() -> Path:
    explicit = os.environ.get(ENV_VENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "lightbus_sync" / f"lightbus-{LIGHTBUS_VERSION}"


def _verify(directory: Path) -> tuple[bool, str]:
    """(usable, detail): the venv imports lightbus at the pinned version and has the CLI."""
    python = directory / "bin" / "python"
    if not python.exists() or not (directory / "bin" / "lightbus").exists():
        return False, f"{directory} has no bin/python or bin/lightbus"
    result = subprocess.run([str(python), "-c", _CHECK], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        return False, (result.stdout + result.stderr).strip()[-2000:]
    versions = result.stdout.split()
    if not versions or versions[0] != LIGHTBUS_VERSION:
        return False, f"{directory} has lightbus {result.stdout.strip()!r}, need {LIGHTBUS_VERSION}"
    return True, result.stdout.strip()


def _base_python() -> str:
    """Lightbus 1.1.2 runs on Python 3.11 (not 3.12+: asyncio APIs it uses are gone)."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if not found:
        raise RuntimeError(
            f"Lightbus {LIGHTBUS_VERSION} needs Python 3.11 for its virtualenv; this is "
            f"{sys.version.split()[0]} and no python3.11 is on PATH"
        )
    return found


def _run(command: list[str], what: str, timeout: float) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{output[-4000:]}")


def build_lightbus_venv(directory: Path) -> Path:
    """Return a verified Lightbus virtualenv at ``directory``, building it if needed."""
    if _verify(directory)[0]:  # the usual case: built by an earlier run
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = directory.with_name(directory.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it: wait for it
        usable, detail = _verify(directory)
        if usable:
            return directory
        if directory.exists():
            if not (directory / OWNED_MARKER).exists():
                raise RuntimeError(
                    f"{directory} exists but is not a usable Lightbus {LIGHTBUS_VERSION} virtualenv "
                    f"({detail}), and was not built by these tests, so it is left alone: "
                    f"remove it or point ${ENV_VENV} elsewhere"
                )
            shutil.rmtree(directory)  # a build of ours that did not finish
        # Built in place: a virtualenv cannot be moved (its scripts hold absolute paths).
        _run([_base_python(), "-m", "venv", str(directory)], "creating the virtualenv", 300)
        (directory / OWNED_MARKER).write_text("built by lightbus_sync's tests/interop/conftest.py\n")
        _run(
            [str(directory / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
             "--quiet", *LIGHTBUS_REQUIREMENTS],
            f"pip install {' '.join(LIGHTBUS_REQUIREMENTS)}", 900,
        )
        usable, detail = _verify(directory)
        if not usable:
            raise RuntimeError(f"the freshly built virtualenv does not work: {detail}")
        (directory / COMPLETE_MARKER).write_text(detail + "\n")
        return directory


@pytest.fixture(scope="session")
def lightbus_venv() -> Path:
    """Directory of a virtualenv holding the real Lightbus 1.1.2 (``bin/lightbus``,
    ``bin/python``). Fails, never skips, when it cannot be had."""
    directory = venv_dir()
    try:
        return build_lightbus_venv(directory)
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    pytest.fail(
        f"the interop tests need a virtualenv with the real Lightbus {LIGHTBUS_VERSION} at "
        f"{directory} (set ${ENV_VENV} to use another place), and it could not be built: {problem}",
        pytrace=False,
    )


@pytest.fixture
def procs(lightbus_venv: Path, tmp_path: Path) -> Iterator[ProcessGroup]:
    """Starts real Lightbus and lightbus_sync processes; kills whatever is left at the end."""
    group = ProcessGroup(lightbus_venv, tmp_path)
    try:
        yield group
    finally:
        group.cleanup()
