"""The ``lightbus-sync`` command as users run it (a child process): ``--version``,
``python -m lightbus_sync``, help with exit statuses, and the exit statuses themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lightbus_sync

REPO_ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "redis://127.0.0.1:1/0"


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    environment.update(PYTHONPATH=os.pathsep.join([str(cwd), str(REPO_ROOT)]), **env)
    return subprocess.run([sys.executable, "-m", "lightbus_sync", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_version(tmp_path):
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"lightbus-sync {lightbus_sync.__version__}\n"


@pytest.mark.parametrize("args", [(), ("run",), ("status",), ("dead-letters", "replay")],
                         ids=["top", "run", "status", "dead-letters-replay"])
def test_help_is_plain_text_and_lists_the_exit_statuses(tmp_path, args):
    result = cli(*args, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "``" not in text and ":class:" not in text  # no reStructuredText
    assert "exit statuses:" in text
    for status in ("  0  done", "  1  failed", "  2  bad arguments or configuration",
                   "  3  the bus module could not be imported", "  4  Redis unavailable"):
        assert status in text
    if not args:
        for command in ("run", "status", "inspect", "dead-letters", "dumpschema", "demo"):
            assert f"\n    {command} " in text


@pytest.mark.parametrize("command", [("run",), ("status", "--redis-url", UNREACHABLE)], ids=["run", "status"])
def test_a_missing_bus_module_is_one_line(tmp_path, command):
    result = cli(*command, "--bus", "no_such_bus_module", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        f"lightbus-sync: no bus module named 'no_such_bus_module' (no module 'no_such_bus_module' on the path, "
        f"which starts with the current directory {tmp_path}); give the module with --bus or $LIGHTBUS_MODULE"]


def test_a_missing_package_of_the_bus_module_is_one_line_too(tmp_path):
    result = cli("run", "--bus", "nowhere.bus", cwd=tmp_path)
    assert result.returncode == 3
    assert len(result.stderr.splitlines()) == 1 and "no module 'nowhere'" in result.stderr


def test_an_import_error_inside_the_bus_module_keeps_its_traceback(tmp_path):
    (tmp_path / "broken_bus.py").write_text("import lightbus_sync\nimport no_such_dependency\n")
    result = cli("run", "--bus", "broken_bus", cwd=tmp_path)
    assert result.returncode == 3
    assert "the bus module 'broken_bus' failed to import" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "ModuleNotFoundError: No module named 'no_such_dependency'" in result.stderr


@pytest.mark.parametrize("where", ["flag", "run-flag", "environment"])
def test_an_unknown_log_level_is_refused(tmp_path, where):
    if where == "flag":
        result = cli("--log-level", "LOUD", "status", "--api", "x", "--redis-url", UNREACHABLE, cwd=tmp_path)
    elif where == "run-flag":
        result = cli("run", "--log-level", "LOUD", cwd=tmp_path)
    else:
        result = cli("status", "--api", "x", "--redis-url", UNREACHABLE, cwd=tmp_path, LIGHTBUS_LOG_LEVEL="loud")
    assert result.returncode == 2
    assert "unknown log level" in result.stderr and "DEBUG, INFO, WARNING, ERROR, CRITICAL" in result.stderr


def test_a_log_level_in_any_case_is_accepted(tmp_path):
    result = cli("--log-level", "debug", "--version", cwd=tmp_path)
    assert result.returncode == 0


def test_redis_unavailable_and_configuration_errors_have_distinct_statuses(tmp_path):
    unavailable = cli("status", "--api", "x", "--redis-url", UNREACHABLE, cwd=tmp_path)
    assert unavailable.returncode == 4
    assert unavailable.stderr.startswith("lightbus-sync: Redis unavailable:")
    bad_config = cli("status", "--api", "x", "--redis-url", "http://nowhere", cwd=tmp_path)
    assert bad_config.returncode == 2, bad_config.stderr
    usage = cli("status", "--no-such-flag", cwd=tmp_path)
    assert usage.returncode == 2
