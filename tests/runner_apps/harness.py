"""Helpers for the runner tests: real ``lightbus-sync run`` processes, a systemd notify
socket, polling, and a Redis 7 server beside the session's server.

Imported by the tests as ``runner_apps.harness``; the bus modules in this directory are
imported by the child processes as top-level modules (``PYTHONPATH`` points here).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest


APPS_DIR = Path(__file__).resolve().parent
REPO_ROOT = APPS_DIR.parent.parent

#: Short timings so reclaim and retry happen within a test's lifetime.
ACK_TIMEOUT = 1
FAST_REDIS = {"acknowledgement_timeout": ACK_TIMEOUT, "reclaim_interval": 0.2, "block_ms": 100}


def fast_config(redis: Optional[dict] = None, runner: Optional[dict] = None) -> dict[str, Any]:
    """A config tree with short acknowledgement timeout, reclaim interval and BLOCK."""
    config: dict[str, Any] = {"apis": {"default": {"event_transport": {"redis": {**FAST_REDIS, **(redis or {})}}}}}
    if runner:
        config["bus"] = {"runner": runner}
    return config


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}", pytrace=False)
        time.sleep(interval)


class Calls:
    """What handlers were called with, from any thread."""

    def __init__(self) -> None:
        self.items: list = []
        self.lock = threading.Lock()

    def add(self, item) -> None:
        with self.lock:
            self.items.append(item)

    def __len__(self) -> int:
        with self.lock:
            return len(self.items)


def pending_count(client, stream: str, group: str) -> int:
    return int(client.xpending(stream, group)["pending"])


def consumer_names(client, stream: str, group: str) -> list[str]:
    return sorted(c["name"].decode() for c in client.xinfo_consumers(stream, group))


def lines(client, key: str) -> list[str]:
    """The list at ``key`` (what the recording bus module records), decoded."""
    return [line.decode() for line in client.lrange(key, 0, -1)]


@pytest.fixture
def producer(redis_url: str) -> Iterator[Any]:
    """A bus of another service, with fast timings, to fire the test's events."""
    import lightbus_sync

    bus = lightbus_sync.create(redis_url=redis_url, service_name="producer", process_name="producer",
                               config=fast_config())
    yield bus
    bus.close()


# --- Redis 7 ----------------------------------------------------------------------------


# --- systemd notify socket --------------------------------------------------------------


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="lb-notify-")
        self.path = os.path.join(self._dir, "notify.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.05)
        self.messages: list[str] = []

    def _drain(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                return
            self.messages.append(data.decode())

    def lines(self) -> list[str]:
        """Every ``KEY=value`` line received so far, in order."""
        self._drain()
        return [line for message in self.messages for line in message.splitlines()]

    def wait_for(self, line: str, timeout: float = 15.0) -> None:
        wait_until(lambda: line in self.lines(), timeout, what=f"{line!r} on the notify socket")

    def close(self) -> None:
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# --- lightbus-sync run processes ------------------------------------------------------


class RunProcess:
    """``python -m lightbus_sync.cli run --bus <module>`` as a real child process.

    stdout/stderr go to a file (a pipe could fill and block the child). READY is
    detected through a private notify socket, as systemd would.
    """

    def __init__(
        self,
        tmp_path: Path,
        bus_module: str,
        redis_url: str,
        *args: str,
        config: Optional[dict] = None,
        env: Optional[dict[str, str]] = None,
        notify: bool = True,
        name: str = "run",
    ) -> None:
        self.log_path = tmp_path / f"{name}-{time.monotonic_ns()}.log"
        self.notify = NotifySocket() if notify else None
        command = [sys.executable, "-m", "lightbus_sync.cli", "run", "--bus", bus_module, "--redis-url", redis_url]
        if config is not None:
            config_path = tmp_path / f"{name}-config-{time.monotonic_ns()}.json"
            config_path.write_text(json.dumps(config))
            command += ["--config", str(config_path)]
        command += list(args)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        child_env["PYTHONPATH"] = os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)])
        child_env["PYTHONUNBUFFERED"] = "1"
        child_env["TEST_REDIS_URL"] = redis_url
        if self.notify is not None:
            child_env["NOTIFY_SOCKET"] = self.notify.path
        child_env.update(env or {})
        self.command = command
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env, cwd=str(tmp_path))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 15.0) -> "RunProcess":
        assert self.notify is not None
        deadline = time.monotonic() + timeout
        while "READY=1" not in self.notify.lines():
            if self.proc.poll() is not None:
                pytest.fail(f"lightbus-sync run exited with {self.proc.returncode} before READY:\n{self.output()}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"no READY=1 within {timeout}s:\n{self.output()}", pytrace=False)
            time.sleep(0.02)
        return self

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"lightbus-sync run did not exit within {timeout}s:\n{self.output()}", pytrace=False)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.notify is not None:
            self.notify.close()


@pytest.fixture
def run_process(tmp_path: Path) -> Iterator[Callable[..., RunProcess]]:
    """Factory for ``RunProcess``; every process started is killed at the end of the test."""
    started: list[RunProcess] = []

    def start(bus_module: str, redis_url: str, *args: str, **kwargs: Any) -> RunProcess:
        process = RunProcess(tmp_path, bus_module, redis_url, *args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()


@pytest.fixture
def make_bus(redis_url: str) -> Iterator[Callable[..., Any]]:
    """Factory for in-process buses on the test's Redis (fast timings by default);
    closed at the end of the test."""
    import lightbus_sync

    buses = []

    def make(url: Optional[str] = None, *, service_name: str = "svc", process_name: str = "p1",
             config: Optional[dict] = None) -> Any:
        bus = lightbus_sync.create(
            redis_url=url or redis_url, service_name=service_name, process_name=process_name,
            config=fast_config() if config is None else config,
        )
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def run_cli(tmp_path: Path, *args: str, env: Optional[dict[str, str]] = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """``lightbus-sync <args>`` to completion (the console script)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    child_env["PYTHONPATH"] = os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)])
    child_env.update(env or {})
    script = shutil.which("lightbus-sync") or ""
    command = [script, *args] if script else [sys.executable, "-m", "lightbus_sync.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=child_env, cwd=str(tmp_path), timeout=timeout)
