"""Helpers for the interop tests: the shared YAML, real Lightbus and lightbus_sync
processes (their output in log files), JSON-lines results, polling Redis.

Imported by the tests only (never by the processes they start).
"""

from __future__ import annotations

import json
import os
import signal
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pytest

INTEROP_DIR = Path(__file__).resolve().parent
REPO_ROOT = INTEROP_DIR.parent.parent
CONFIG_TEMPLATE = INTEROP_DIR / "lightbus.yaml"

#: Lines a Lightbus process prints when validation did not happen or failed, or when
#: it shut down on an error.
LIGHTBUS_TROUBLE = (
    "no schema present for this API",
    "ValidationError",
    "SchemaNotFound",
    "Traceback",
    "Lightbus will now shutdown",
)


def write_config(
    path: Path,
    redis_url: str,
    *,
    service_name: str,
    process_name: str,
    stream_use: str = "per_api",
    acknowledgement_timeout: float = 60,
    reclaim_interval: Optional[float] = None,
) -> Path:
    """Fill in tests/interop/lightbus.yaml and write it to ``path``."""
    text = string.Template(CONFIG_TEMPLATE.read_text()).substitute(
        redis_url=redis_url,
        service_name=service_name,
        process_name=process_name,
        stream_use=stream_use,
        acknowledgement_timeout=acknowledgement_timeout,
        reclaim_interval="null" if reclaim_interval is None else reclaim_interval,
    )
    path.write_text(text)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _clean_environ() -> dict[str, str]:
    """The test's environment without LIGHTBUS_* (the CLI flags and YAML decide)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Proc:
    """One child process; stdout and stderr go to ``log_path``."""

    def __init__(self, name: str, command: Sequence[str], log_path: Path, env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(
            self.command, cwd=str(cwd), env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def kill9(self) -> None:
        """SIGKILL: no clean-up of any kind, as after a crash or an OOM kill."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL after ``timeout``)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
            raise AssertionError(f"{self.name} did not stop within {timeout}s after SIGTERM:\n{self.tail()}") from None

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def close(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait(10)
        self._log.close()

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} {'alive' if self.alive() else 'exited'}>"


class ProcessGroup:
    """Starts the real Lightbus and lightbus_sync processes of one test and cleans up.

    Working directory: tests/interop (it holds the bus modules, as ``lightbus run``
    expects). Handlers write their JSON lines to ``out_path(name)``.
    """

    def __init__(self, venv: Path, workdir: Path) -> None:
        self.venv = venv
        self.workdir = workdir
        self.procs: list[Proc] = []

    @property
    def lightbus_bin(self) -> str:
        return str(self.venv / "bin" / "lightbus")

    @property
    def lightbus_python(self) -> str:
        return str(self.venv / "bin" / "python")

    def out_path(self, name: str) -> Path:
        return self.workdir / f"{name}.jsonl"

    def _start(self, name: str, command: list[str], out: Optional[str], extra_env: Optional[dict] = None) -> Proc:
        env = _clean_environ()
        if out is not None:
            env["INTEROP_OUT"] = str(self.out_path(out))
        env.update(extra_env or {})
        index = sum(1 for p in self.procs if p.name == name)
        log_path = self.workdir / f"{name}{'-' + str(index) if index else ''}.log"
        proc = Proc(name, command, log_path, env, INTEROP_DIR)
        self.procs.append(proc)
        return proc

    def lightbus_worker(self, name: str, bus_module: str, config: Path, *, out: str,
                        service_name: Optional[str] = None, process_name: Optional[str] = None) -> Proc:
        """``lightbus run --bus MODULE --config FILE [-s S] [-p P]`` (the real Lightbus)."""
        command = [self.lightbus_bin, "run", "--bus", bus_module, "--config", str(config)]
        if service_name:
            command += ["-s", service_name]
        if process_name:
            command += ["-p", process_name]
        return self._start(name, command, out)

    def sync_runner(self, name: str, bus_module: str, config: Path, *, out: str,
                    service_name: Optional[str] = None, process_name: Optional[str] = None,
                    log_level: str = "info") -> Proc:
        """``lightbus-sync run --bus MODULE --config FILE [-s S] [-p P] --log-level L``: the
        same command line as ``lightbus run`` (run as ``python -m lightbus_sync.cli``, so the
        pid is the runner's own, whatever wraps the console script)."""
        command = [sys.executable, "-m", "lightbus_sync.cli", "run", "--bus", bus_module, "--config", str(config)]
        if service_name:
            command += ["-s", service_name]
        if process_name:
            command += ["-p", process_name]
        command += ["--log-level", log_level]
        return self._start(name, command, out, {"PYTHONPATH": str(REPO_ROOT)})

    def run_lightbus_script(self, script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a script under the Lightbus virtualenv's python; fail the test if it fails."""
        result = subprocess.run(
            [self.lightbus_python, script, *args], cwd=str(INTEROP_DIR), env=_clean_environ(),
            capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            pytest.fail(f"{script} {' '.join(args)} failed (exit {result.returncode}):\n"
                        f"{result.stdout}\n{result.stderr}", pytrace=False)
        return result

    def run_cli(self, command: list[str], timeout: float = 60, sync: bool = False) -> subprocess.CompletedProcess:
        env = _clean_environ()
        if sync:
            env["PYTHONPATH"] = str(REPO_ROOT)
        return subprocess.run(command, cwd=str(INTEROP_DIR), env=env, capture_output=True, text=True,
                              timeout=timeout)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p!r} ({p.log_path.name}) ---\n{p.tail()}" for p in self.procs)

    def cleanup(self) -> None:
        for proc in self.procs:
            proc.close()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               diagnostics: Optional[Callable[[], str]] = None, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy; fail with ``what`` (and the processes' logs)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            details = f"\n{diagnostics()}" if diagnostics else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{details}", pytrace=False)
        time.sleep(interval)


def consumer_names(client, stream: str, group: str) -> list[str]:
    """Names of the consumers of ``group`` on ``stream`` ([] if either is missing)."""
    try:
        return sorted(c["name"].decode() for c in client.xinfo_consumers(stream, group))
    except Exception:
        return []


def has_consumer(client, streams: Sequence[str], group: str, consumer: str) -> bool:
    return all(consumer in consumer_names(client, s, group) for s in streams)


def pending_by_consumer(client, stream: str, group: str) -> dict[str, int]:
    try:
        summary = client.xpending(stream, group)
    except Exception:
        return {}
    return {c["name"].decode(): int(c["pending"]) for c in summary.get("consumers") or ()}
