"""``lightbus-sync demo`` as a user runs it: a real process, its output read as one stream."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

LINE = re.compile(
    r"Redis: .+"
    r"|fired    demo\.auth\.user_created id=[0-9a-f-]{36}"
    r"|  received #\d+: user\d+ <user\d+@example\.com> admin=(True|False) created_at=\S+ \(stream id \d+-\d+\)"
    r"|OK: received 40 of 40 events"
    r"|\d{4}-\d\d-\d\d.* (INFO|WARNING) lightbus_sync\..*"
    r"|\{.*\}"  # a JSON log record, should the environment ask for JSON logs
)


def test_the_demo_prints_one_line_per_event_whatever_the_threads_do(redis_url):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "lightbus_sync.cli", "demo", "--redis-url", redis_url, "--count", "40"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=60, cwd=REPO_ROOT,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    mixed = [line for line in lines if not LINE.fullmatch(line)]
    assert mixed == [], f"lines that are not exactly one message: {mixed!r}"
    assert sum(line.startswith("fired    ") for line in lines) == 40
    assert sorted(int(m.group(1)) for m in map(re.compile(r"  received #(\d+):").match, lines) if m) == list(
        range(1, 41))
