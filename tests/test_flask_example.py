"""examples/flask_app as a real process (``flask run`` on 127.0.0.1 and a free port)
against the suite's Redis: POST /users fires, the app's own listener thread counts; the
reloader's parent does not listen; the listener is stopped cleanly at exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

import psutil
import pytest

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "flask_app"
STREAM = "flask_example.users.*:stream"
GROUP = "flask_example-count_users"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FlaskProcess:
    """``python -m flask --app app run`` in examples/flask_app, in its own session so the
    reloader's child can be signalled with it. Output goes to a file."""

    def __init__(self, tmp_path: Path, redis_url: str, *flags: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"flask-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "FLASK_", "WERKZEUG_"))}
        env.update(LIGHTBUS_REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "flask", "--app", "app", "run",
                   "--host", "127.0.0.1", "--port", str(self.port), *flags]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=str(EXAMPLE_DIR), env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: Optional[dict] = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"flask run exited with {self.proc.returncode}:\n{self.output()}", pytrace=False)
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app was not healthy within {timeout}s:\n{self.output()}", pytrace=False)
            time.sleep(0.05)

    def wait_received(self, count: int, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status, stats = self.request("GET", "/stats")
            if status == 200 and stats["received"] >= count:
                return stats
            if time.monotonic() > deadline:
                pytest.fail(f"expected {count} received, got {stats}:\n{self.output()}", pytrace=False)
            time.sleep(0.05)

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C: SIGINT to the process group (the reloader's child too); wait for the
        whole group to be gone."""
        processes = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(timeout)
        psutil.wait_procs(processes, timeout=timeout)
        return code

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


@pytest.fixture
def flask_process(tmp_path: Path, redis_url: str) -> Iterator[Any]:
    started: list[FlaskProcess] = []

    def start(*flags: str) -> FlaskProcess:
        process = FlaskProcess(tmp_path, redis_url, *flags)
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()


def test_post_users_fires_and_the_embedded_listener_counts(flask_process, redis_client):
    app = flask_process()
    app.wait_healthy()
    for name in ("adam", "eve", "bob"):
        status, body = app.request("POST", "/users", {"username": name, "email": f"{name}@example.com"})
        assert status == 201, body
        assert body["stream_id"] and body["id"]
    stats = app.wait_received(3)
    assert stats == {"received": 3, "usernames": ["adam", "eve", "bob"]}
    status, body = app.request("POST", "/users", {"username": "nomail"})
    assert status == 400 and "missing required parameter" in body["error"]

    # On the wire: three entries, one consumer group named after the service, all acked.
    assert redis_client.xlen(STREAM) == 3
    (group,) = redis_client.xinfo_groups(STREAM)
    assert group["name"].decode() == GROUP
    deadline = time.monotonic() + 10
    while redis_client.xpending(STREAM, GROUP)["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0

    # Ctrl-C: the atexit hook stops the listener thread cleanly.
    assert app.interrupt() == 0
    assert "lightbus_sync: listener stopped (clean)" in app.output()


def test_with_the_reloader_only_the_serving_child_listens(flask_process, redis_client):
    app = flask_process("--debug")  # reloader (and debugger) on
    app.wait_healthy()
    parent = psutil.Process(app.proc.pid)
    children = [c for c in parent.children(recursive=True) if "python" in c.name().lower()]
    assert len(children) == 1, children
    child = children[0]
    assert child.environ().get("WERKZEUG_RUN_MAIN") == "true"
    # One consumer in the group: the child's (consumer names are <hostname>-<pid>).
    consumers = [c["name"].decode() for c in redis_client.xinfo_consumers(STREAM, GROUP)]
    assert consumers == [f"{socket.gethostname()}-{child.pid}"]
    assert "not starting listeners in the reloader's parent process" in app.output()
    status, _ = app.request("POST", "/users", {"username": "ada", "email": "ada@example.com"})
    assert status == 201
    assert app.wait_received(1)["usernames"] == ["ada"]
    app.interrupt()
