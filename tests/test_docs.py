"""Every code block in docs/*.md and README.md runs, so the docs cannot rot.

Conventions for blocks (see docs/README.md):
- a block whose first line is ``# file: PATH`` is written to PATH (in a fresh directory
  per document) instead of being run; python, yaml, toml, json and ini blocks may do this;
- other ``python`` blocks run in order in ONE interpreter per document (a subprocess
  whose working directory is that fresh directory, on PYTHONPATH);
- ``bash`` blocks run in order too; a bash block whose first line is
  ``# runs until stopped`` is started in the background, given time to create its
  consumer groups, and stopped with SIGTERM before the next block runs (it must then
  exit 0);
- ``text``/``console`` blocks show output and are not run.
Everything runs against the suite's Redis: LIGHTBUS_REDIS_URL is set for every block.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
FILE_MARK = re.compile(r"^#\s*file:\s*(\S+)\s*$")
RUNNING_MARK = "# runs until stopped"
SHOWN_ONLY = {"text", "console", "", "output", "systemd", "ini-output"}


def blocks(path: Path) -> list[tuple[str, str]]:
    return [(lang.lower(), textwrap.dedent(body)) for lang, body in FENCE.findall(path.read_text(encoding="utf-8"))]


PYTHON_RUNNER = r'''
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for index, source in blocks:
    print(f"--- block {index} ---", flush=True)
    try:
        exec(compile(source, f"<doc block {index}>", "exec"), namespace)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(f"doc block {index} failed")
'''


def _run_python(blocks_to_run, workdir: Path, env: dict) -> None:
    import json

    spec = workdir / ".doc_blocks.json"
    spec.write_text(json.dumps(blocks_to_run))
    runner = workdir / ".doc_runner.py"
    runner.write_text(PYTHON_RUNNER)
    result = subprocess.run([sys.executable, str(runner), str(spec)], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_code_blocks_run(path, redis_url, tmp_path, redis_client):
    env = dict(os.environ, LIGHTBUS_REDIS_URL=redis_url, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), PYTHONUNBUFFERED="1")
    env.pop("LIGHTBUS_CONFIG", None)
    background: list[subprocess.Popen] = []
    pending_python: list[tuple[int, str]] = []

    def flush_python() -> None:
        if pending_python:
            _run_python(list(pending_python), tmp_path, env)
            pending_python.clear()

    def stop_background() -> None:
        for process in background:
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=40)
            assert process.returncode == 0, out
        background.clear()

    ran = 0
    for index, (lang, body) in enumerate(blocks(path)):
        first = body.splitlines()[0] if body.strip() else ""
        if lang not in SHOWN_ONLY:
            stop_background()
        marker = FILE_MARK.match(first)
        if marker:
            target = tmp_path / marker.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
            if target.suffix == ".py" and target.parent != tmp_path:
                for parent in target.relative_to(tmp_path).parents:
                    init = tmp_path / parent / "__init__.py"
                    if parent != Path(".") and not init.exists():
                        init.write_text("")
            continue
        if lang in ("python", "py"):
            pending_python.append((index, body))
            ran += 1
        elif lang in ("bash", "sh", "shell"):
            if first.strip() == RUNNING_MARK:
                flush_python()
                process = subprocess.Popen(["bash", "-c", body], cwd=tmp_path, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                           start_new_session=False)
                background.append(process)
                _wait_until_listening(redis_client)
            else:
                flush_python()
                result = subprocess.run(["bash", "-c", body], cwd=tmp_path, env=env,
                                        capture_output=True, text=True, timeout=300)
                assert result.returncode == 0, f"block {index}:\n{body}\n{result.stdout}\n{result.stderr}"
            ran += 1
        elif lang not in SHOWN_ONLY and lang not in ("yaml", "yml", "toml", "json", "ini"):
            pytest.fail(f"{path.name} block {index}: unknown block language {lang!r}")
    flush_python()
    stop_background()
    if path.name != "README.md":
        assert ran > 0, f"{path.name} has no runnable code block"


def _wait_until_listening(redis_client, timeout: float = 20) -> None:
    """A started runner has created its consumer groups: wait for any group to exist."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in redis_client.scan_iter(match="*:stream", count=1000):
            try:
                if redis_client.xinfo_groups(key):
                    time.sleep(0.3)
                    return
            except Exception:
                pass
        time.sleep(0.1)
