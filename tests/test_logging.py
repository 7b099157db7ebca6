"""Logging of `lightbus-sync run`: JSON records carry the event's context; under systemd
(JOURNAL_STREAM set) text records have no timestamp of their own (the journal adds it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import lightbus_sync
from runner_apps.harness import APPS_DIR, REPO_ROOT, wait_until
from runner_apps.runner_api import RunnerTestApi  # noqa: F401  (defines the API)

STREAM = "runner_test.*:stream"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def _groups(redis_client) -> list:
    try:
        return redis_client.xinfo_groups(STREAM)
    except Exception:
        return []


def _run_failing_listener(redis_url, redis_client, *global_args: str, env: dict | None = None) -> list[str]:
    """Run failing_bus under `lightbus-sync run`, fire one event (its handler always
    raises, max_deliveries=1: dead-lettered), stop; return the stderr lines."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "JOURNAL_STREAM"))}
    child_env["PYTHONPATH"] = os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)])
    child_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightbus_sync.cli", *global_args, "run", "--bus", "failing_bus",
         "--redis-url", redis_url],
        env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: any(g["name"] == b"logs-fails" for g in _groups(redis_client)), what="the group")
        producer = lightbus_sync.create(redis_url=redis_url, service_name="producer")
        try:
            producer.runner_test.job.fire(n=1)
        finally:
            producer.close()
        wait_until(lambda: redis_client.exists("{" + STREAM + "}:dead"), what="the event dead-lettered")
        time.sleep(0.2)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    return [line for line in stderr.splitlines() if line.strip()]


def test_json_records_carry_the_event_context(redis_url, redis_client):
    lines = _run_failing_listener(redis_url, redis_client, "--log-format", "json")
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    failures = [r for r in records if r.get("listener") == "fails" and "exception" in r]
    assert failures, records
    record = failures[0]
    assert record["event"] == "runner_test.job"
    assert record["delivery_count"] == 1
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", record["event_id"])
    assert "ValueError: cannot handle 1" in record["exception"]


def test_text_records_have_timestamps_except_under_systemd(redis_url, redis_client):
    plain = _run_failing_listener(redis_url, redis_client)
    assert any(TIMESTAMP.match(line) for line in plain), plain
    redis_client.flushall()
    journal = _run_failing_listener(redis_url, redis_client, env={"JOURNAL_STREAM": "8:12345"})
    records = [line for line in journal if line.startswith(("INFO", "WARNING", "ERROR", "CRITICAL"))]
    assert records, journal
    assert not any(TIMESTAMP.match(line) for line in journal), journal


def test_log_level_filters_records(redis_url, redis_client):
    lines = _run_failing_listener(redis_url, redis_client, "--log-level", "ERROR")
    assert lines
    assert not any(" INFO " in line or " WARNING " in line for line in lines), lines


def test_json_time_is_iso_8601_utc_with_milliseconds():
    import datetime
    import json
    import logging

    from lightbus_sync.logs import JsonFormatter

    record = logging.LogRecord("lightbus_sync.runner", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.created = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc).timestamp()
    data = json.loads(JsonFormatter().format(record))
    assert data["time"] == "2026-01-02T03:04:05.678Z"
    assert data["message"] == "hello you" and data["level"] == "INFO"
    parsed = datetime.datetime.fromisoformat(data["time"].replace("Z", "+00:00"))
    assert parsed.utcoffset() == datetime.timedelta(0)
