"""``lightbus-sync run --metrics-port``: a real runner process serving /metrics; the
counters are scraped over HTTP after firing events at it."""

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
from typing import Callable, Iterator, Optional

import pytest
from prometheus_client.parser import text_string_to_metric_families

import lightbus_sync
from metrics_apps.metrics_api import MetricsOrdersApi  # noqa: F401  (defines the API here too)

APPS_DIR = Path(__file__).resolve().parent / "metrics_apps"
REPO_ROOT = Path(__file__).resolve().parent.parent
STREAM = "metrics_test.orders.*:stream"
FAST = {"apis": {"default": {"event_transport": {"redis": {"block_ms": 100, "reclaim_interval": 0.2}}}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunProcess:
    def __init__(self, tmp_path: Path, redis_url: str, *args: str) -> None:
        config = tmp_path / f"config-{time.monotonic_ns()}.json"
        config.write_text(json.dumps(FAST))
        self.log_path = tmp_path / f"run-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        env["PYTHONPATH"] = os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)])
        env["PYTHONUNBUFFERED"] = "1"
        command = [sys.executable, "-m", "lightbus_sync.cli", "run", "--bus", "metrics_bus",
                   "--redis-url", redis_url, "--config", str(config), "--process-name", "metrics-1", *args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path))

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def run_process(tmp_path: Path) -> Iterator[Callable[..., RunProcess]]:
    started: list[RunProcess] = []

    def start(redis_url: str, *args: str) -> RunProcess:
        process = RunProcess(tmp_path, redis_url, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics: {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> Optional[float]:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_for_scrape(process: RunProcess, port: int, predicate: Callable[[dict], bool], timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    samples: dict = {}
    while True:
        if process.proc.poll() is not None:
            pytest.fail(f"lightbus-sync run exited with {process.proc.returncode}:\n{process.output()}", pytrace=False)
        try:
            samples = scrape(port)
            if predicate(samples):
                return samples
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"no matching scrape within {timeout}s; last: "
                        f"{ {k: v for k, v in samples.items() if k[0].startswith('lightbus_sync')} }\n"
                        f"{process.output()}", pytrace=False)
        time.sleep(0.05)


def test_metrics_endpoint_of_a_running_runner_counts_what_it_did(run_process, redis_url, redis_client):
    port = free_port()
    process = run_process(redis_url, "--metrics-port", str(port), "--metrics-host", "127.0.0.1")
    groups = {"count": "metrics_svc-count", "reject": "metrics_svc-reject"}

    # Ready once both consumer groups exist (the gauges are read from XINFO GROUPS).
    samples = wait_for_scrape(process, port, lambda s: all(
        value(s, "lightbus_sync_group_pending", listener=l, group=g, stream=STREAM) == 0 for l, g in groups.items()))
    assert value(samples, "lightbus_sync_events_processed_total", listener="count", outcome="ok") == 0
    assert value(samples, "lightbus_sync_events_in_flight", listener="reject") == 0
    assert value(samples, "process_cpu_seconds_total") is not None  # the default registry's collectors

    producer = lightbus_sync.create(redis_url=redis_url, service_name="shop")
    try:
        producer.metrics_test.orders.order_placed.fire_many([{"order_id": i} for i in range(5)])
    finally:
        producer.close()

    samples = wait_for_scrape(process, port, lambda s: (
        value(s, "lightbus_sync_events_processed_total", listener="count", outcome="ok") == 5
        and value(s, "lightbus_sync_events_dead_lettered_total", listener="reject") == 5))
    assert value(samples, "lightbus_sync_events_processed_total", listener="reject", outcome="error") == 5
    assert value(samples, "lightbus_sync_events_processed_total", listener="reject", outcome="ok") == 0
    assert value(samples, "lightbus_sync_events_processed_total", listener="count", outcome="error") == 0
    # the count handler fires a follow-up event from inside the runner process
    assert value(samples, "lightbus_sync_events_fired_total", api="metrics_test.orders", event="order_counted") == 5
    assert value(samples, "lightbus_sync_handler_duration_seconds_count", listener="count") == 5
    assert value(samples, "lightbus_sync_handler_duration_seconds_count", listener="reject") == 5
    assert value(samples, "lightbus_sync_events_dead_lettered_total", listener="count") == 0
    for listener in groups:  # max_deliveries=1: straight to dead letter
        assert value(samples, "lightbus_sync_events_retried_total", listener=listener) == 0
    samples = wait_for_scrape(process, port, lambda s: all(
        value(s, "lightbus_sync_group_pending", listener=l, group=g, stream=STREAM) == 0 for l, g in groups.items()))
    assert value(samples, "lightbus_sync_events_in_flight", listener="count") == 0
    assert redis_client.xlen("{" + STREAM + "}:dead") == 5

    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(30) == 0, process.output()


def test_a_metrics_port_in_use_is_a_configuration_error(run_process, redis_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = run_process(redis_url, "--metrics-port", str(port), "--metrics-host", "127.0.0.1")
        assert process.proc.wait(30) == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in process.output()
