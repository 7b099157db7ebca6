"""Real processes of a Django project for the tests: ``manage.py`` commands run to
completion or kept running (``lightbus_run``, ``runserver``), output to a file, READY
read from a private systemd notify socket; and PostgreSQL databases made and dropped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

from runner_apps.harness import NotifySocket, RunProcess, wait_until

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
EXAMPLE_DIR = REPO_ROOT / "examples" / "django_project"
POSTGRES_URL = os.environ.get("LIGHTBUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def child_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment of a child: no LIGHTBUS_*/DJANGO_*/systemd variables of ours, this
    tree first on the path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LIGHTBUS_", "DJANGO_", "NOTIFY_SOCKET", "WATCHDOG_", "SHOP_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(HERE)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def manage(*args: str, cwd: Path = EXAMPLE_DIR, env: Optional[dict[str, str]] = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """``python manage.py <args>`` to completion."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=str(cwd), env=child_env(env),
                          capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ManageProcess(RunProcess):
    """A long-running ``manage.py`` command; stopped (or killed) at the end of the test.
    Output goes to a file; with ``notify``, READY is read from a private notify socket."""

    def __init__(self, log_dir: Path, *args: str, cwd: Path = EXAMPLE_DIR,
                 env: Optional[dict[str, str]] = None, notify: bool = False) -> None:
        self.log_path = log_dir / f"{args[0]}-{time.monotonic_ns()}.log"
        self.notify = NotifySocket() if notify else None
        extra = dict(env or {})
        if self.notify is not None:
            extra["NOTIFY_SOCKET"] = self.notify.path
        self.command = [sys.executable, "manage.py", *args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command, cwd=str(cwd), env=child_env(extra),
                                         stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> "ManageProcess":
        super().wait_ready(timeout)
        return self

    def stop(self, timeout: float = 30.0) -> int:
        return super().stop(timeout)


class WebProcess(ManageProcess):
    """``manage.py runserver`` (threaded, no reloader) on a free 127.0.0.1 port."""

    def __init__(self, log_dir: Path, *, env: Optional[dict[str, str]] = None) -> None:
        self.port = free_port()
        super().__init__(log_dir, "runserver", f"127.0.0.1:{self.port}", "--noreload", env=env)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_serving(self, timeout: float = 30.0) -> "WebProcess":
        def up() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"runserver exited with {self.proc.returncode}:\n{self.output()}", pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(up, timeout, interval=0.1, what="runserver listening")
        return self

    def request(self, method: str, path: str, body: Optional[dict] = None,
                headers: Optional[dict[str, str]] = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, text.decode(errors="replace")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ManageProcess]]:
    """Append started processes here; each is killed at the end of the test."""
    started: list[ManageProcess] = []
    yield started
    for process in started:
        process.cleanup()


def postgres_url_for(name: str) -> str:
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database with a unique name; dropped afterwards."""
    import psycopg

    name = f"lightbus_dj_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url_for(name)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
