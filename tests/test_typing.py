"""The package as users' type checkers see it (it ships ``py.typed``): code written as the
README and docs write it type-checks under ``mypy --strict``, and the typed path's
mistakes are caught. Both files are also run or imported, so what the checker accepts
is what the library does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPING = Path(__file__).resolve().parent / "typing"


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(*paths: Path, cache: Path) -> subprocess.CompletedProcess:
    # As a user's checker sees an installed package: errors in the user's files only.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--strict",
         "--follow-imports=silent", "--cache-dir", str(cache), *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_the_py_typed_marker_ships():
    assert (ROOT / "lightbus_sync" / "py.typed").exists()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


def test_user_code_type_checks_with_no_errors(mypy_cache):
    result = mypy(TYPING / "user_code.py", cache=mypy_cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_the_typed_path_refuses_what_fire_would_refuse(mypy_cache):
    source = (TYPING / "user_errors.py").read_text()
    expected = {(number, m.group(1)) for number, line in enumerate(source.splitlines(), 1)
                if (m := re.search(r"# E: ([\w-]+)$", line))}
    assert len(expected) == 5
    result = mypy(TYPING / "user_errors.py", cache=mypy_cache)
    found = {(int(m.group(1)), m.group(2))
             for m in re.finditer(r"user_errors\.py:(\d+): error: .*\[([\w-]+)\]$", result.stdout, re.M)}
    assert found == expected, result.stdout


def test_user_code_runs_as_written(redis_url, tmp_path):
    env = dict(os.environ, LIGHTBUS_REDIS_URL=redis_url, PYTHONPATH=os.pathsep.join([str(TYPING), str(ROOT)]))
    env.pop("LIGHTBUS_CONFIG", None)
    result = subprocess.run([sys.executable, str(TYPING / "user_code.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UnknownEvent: API 'my_company.auth' has no event 'user_craeted'" in result.stdout


FIRST_ERROR_LINE = 15  # the calls from here on are refused by the checker


@pytest.mark.parametrize("line", [FIRST_ERROR_LINE, FIRST_ERROR_LINE + 1, FIRST_ERROR_LINE + 2])
def test_what_the_checker_refuses_fire_refuses_too(line, redis_url, monkeypatch):
    """The typed path's errors are the library's errors, not only the checker's."""
    import lightbus_sync
    from lightbus_sync import InvalidFireCall

    monkeypatch.syspath_prepend(str(TYPING))
    source = (TYPING / "user_errors.py").read_text().splitlines()
    assert source[FIRST_ERROR_LINE - 1].endswith("# E: arg-type")
    namespace: dict = {}
    prelude = "\n".join(source[:FIRST_ERROR_LINE - 1]).replace(
        "lightbus_sync.create()", f"lightbus_sync.create(redis_url={redis_url!r})")
    exec(compile(prelude, "user_errors.py", "exec"), namespace)
    try:
        with pytest.raises(InvalidFireCall):
            exec(compile("\n" * (line - 1) + source[line - 1], "user_errors.py", "exec"), namespace)
    finally:
        namespace["bus"].close()
    assert isinstance(namespace["bus"], lightbus_sync.Bus)
