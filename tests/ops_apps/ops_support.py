"""Helpers for the tests of ``lightbus_sync.ops`` and its CLI (tests/test_ops_*.py).

Imported as ``ops_apps.ops_support``; ``ops_cli_bus`` in this directory is the bus
module the CLI tests import (in-process, or in a child process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

import lightbus_sync
from lightbus_sync.testing.redis_server import RedisServer

APPS_DIR = Path(__file__).resolve().parent
REPO_ROOT = APPS_DIR.parent.parent
FAST_REDIS = {"acknowledgement_timeout": 1, "reclaim_interval": 0.2, "block_ms": 100}


def fast_config(**redis: Any) -> dict[str, Any]:
    return {"apis": {"default": {"event_transport": {"redis": {**FAST_REDIS, **redis}}}}}


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}", pytrace=False)
        time.sleep(0.02)


@pytest.fixture
def ops_bus(redis_url: str) -> Iterator[Callable[..., lightbus_sync.Bus]]:
    """Factory for buses on the test's Redis (fast timings); closed at the end."""
    buses = []

    def make(url: Optional[str] = None, *, service_name: str = "svc", process_name: str = "p1",
             config: Optional[dict] = None) -> lightbus_sync.Bus:
        bus = lightbus_sync.create(redis_url=url or redis_url, service_name=service_name,
                                   process_name=process_name, config=config or fast_config())
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


@pytest.fixture
def ops_redis7_url(redis7_server: RedisServer) -> str:
    redis7_server.flushall()
    return redis7_server.url


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """Run ``lightbus-sync <args>`` in this process: (exit code, stdout, stderr). The
    environment (the CLI sets LIGHTBUS_* variables) and the bus module are reset after."""
    from lightbus_sync import cli as cli_module

    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("LIGHTBUS_") and key != "LIGHTBUS_SYNC_REDIS_SERVER":
            monkeypatch.delenv(key)
    monkeypatch.syspath_prepend(str(APPS_DIR))

    def run(*args: str) -> tuple[int, str, str]:
        sys.modules.pop("ops_cli_bus", None)
        capsys.readouterr()
        try:
            code = cli_module.main(list(args))
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
        finally:
            for key in list(os.environ):
                if key.startswith("LIGHTBUS_") and key not in saved:
                    del os.environ[key]
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    sys.modules.pop("ops_cli_bus", None)


def cli_process(*args: str, env: Optional[dict[str, str]] = None, **popen: Any) -> subprocess.Popen:
    """``python -m lightbus_sync.cli <args>`` as a child process (stdout/stderr piped, text)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "NOTIFY_SOCKET"))}
    child_env["PYTHONPATH"] = os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)])
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "lightbus_sync.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env, **popen)
