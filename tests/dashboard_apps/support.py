"""Helpers of the dashboard tests: a real ``lightbus-sync dashboard`` process, HTTP
requests that keep cookies, and a headless Chromium driven by Selenium."""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

APPS_DIR = Path(__file__).resolve().parent
REPO_ROOT = APPS_DIR.parent.parent
TOKEN = "test-action-token-0123456789"
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage")


class DashboardProcess:
    """``python -m lightbus_sync.cli dashboard --port 0 ...`` as a child process; ``url`` is
    read from the line it prints once serving."""

    def __init__(self, tmp_path: Path, redis_url: str, *args: str, env: Optional[dict[str, str]] = None) -> None:
        self.log_path = tmp_path / f"dashboard-{time.monotonic_ns()}.log"
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
        child_env.update(PYTHONPATH=os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)]), PYTHONUNBUFFERED="1",
                         TEST_REDIS_URL=redis_url)
        child_env.update(env or {})
        command = [sys.executable, "-m", "lightbus_sync.cli", "dashboard", "--redis-url", redis_url,
                   "--port", "0", "--sample-interval", "0.2", *args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env, cwd=str(tmp_path))
        self.url = self._wait_serving(20)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_serving(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(r"dashboard on (http://\S+/)", self.output())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                pytest.fail(f"lightbus-sync dashboard exited with {self.proc.returncode}:\n{self.output()}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"lightbus-sync dashboard not serving within {timeout}s:\n{self.output()}", pytrace=False)
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(f"lightbus-sync dashboard did not stop on SIGTERM:\n{self.output()}", pytrace=False)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def dashboard_process(tmp_path: Path) -> Iterator[Any]:
    """Factory for ``DashboardProcess``; each is killed at the end of the test."""
    started: list[DashboardProcess] = []

    def start(redis_url: str, *args: str, **kwargs: Any) -> DashboardProcess:
        process = DashboardProcess(tmp_path, redis_url, *args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()


class Client:
    """HTTP requests with a cookie jar, as a browser would send them (no redirects followed)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path: str, data: Optional[dict] = None, headers: Optional[dict] = None) -> tuple[int, dict, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(req, timeout=15) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def cookie(self, name: str) -> Optional[str]:
        return next((c.value for c in self.jar if c.name == name), None)


def chromium_or_skip() -> tuple[str, str]:
    """Paths of chromium and chromedriver; skips the test (saying how to install) without them."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("browser tests need Debian's chromium and chromium-driver packages "
                    "(apt-get install -y chromium chromium-driver; .ci/run installs them when it can)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need selenium (pip install -r requirements-dev.txt)")
    return chromium, driver


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium with a new empty profile, driven by Selenium."""
    chromium, driver = chromium_or_skip()
    from selenium import webdriver

    profile = tempfile.mkdtemp(prefix="lb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1400,900")
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    session.set_page_load_timeout(30)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)
