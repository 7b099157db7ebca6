"""Both of redis-py's reply parsers: hiredis (installed with lightbus_sync, so the
default) and the pure-Python one (where hiredis is missing). The transport, fire and
runner test modules run again in a child pytest with hiredis hidden."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import redis.utils

import lightbus_sync

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
NO_HIREDIS = TESTS / "no_hiredis"
#: Modules that send every kind of command the library issues, and read every reply kind.
UNDER_PYTHON_PARSER = ["test_core_transport.py", "test_core_fire.py", "test_runner_listen.py",
                       "test_runner_reclaim.py", "test_runner_failures.py"]


def _parser_of(bus: lightbus_sync.Bus) -> type:
    client = bus.transport_for("default").client
    connection = client.connection_pool.get_connection()
    try:
        connection.connect()
        return type(connection._parser)
    finally:
        client.connection_pool.release(connection)


def _python_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(NO_HIREDIS), str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return env


def test_hiredis_parses_the_replies_by_default(redis_url):
    assert redis.utils.HIREDIS_AVAILABLE, "hiredis is a requirement of lightbus_sync (setup.py)"
    bus = lightbus_sync.create(redis_url=redis_url, service_name="p", process_name="p")
    try:
        assert _parser_of(bus).__name__ == "_HiredisParser"
    finally:
        bus.close()


@pytest.mark.timeout(900)
def test_the_pure_python_parser_passes_the_transport_fire_and_runner_tests():
    check = subprocess.run(
        [sys.executable, "-c", "import redis.utils, redis.connection as c; "
         "assert not redis.utils.HIREDIS_AVAILABLE; print(c.DefaultParser.__name__)"],
        env=_python_env(), capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "_RESP2Parser"

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *UNDER_PYTHON_PARSER],
        cwd=str(TESTS), env=_python_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
