"""A real Flask app process that runs its listeners in a background thread
(``bus.start_listener_thread()`` at start-up) and fires from a view."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import lightbus_sync
from runner_apps.harness import APPS_DIR, REPO_ROOT, fast_config, pending_count, wait_until
from runner_apps.web_api import WebApi  # noqa: F401 (defines the app's API)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None, b""


def test_flask_app_fires_from_a_view_and_its_listener_thread_handles_the_events(tmp_path, redis_url, redis_client):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    env.update(LIGHTBUS_REDIS_URL=redis_url, PYTHONPATH=os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)]))
    log_path = tmp_path / "flask.log"
    with open(log_path, "wb") as log:
        app = subprocess.Popen([sys.executable, str(APPS_DIR / "flask_app.py"), str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        wait_until(lambda: app.poll() is not None or get(f"{base}/health")[0] == 200, 15, what="the app")
        assert app.poll() is None, log_path.read_text()

        for name in ("ada", "bob", "cy"):
            status, body = get(f"{base}/signup?username={name}")
            assert status == 200, body
            assert json.loads(body)["stream_id"]
        wait_until(lambda: sorted(json.loads(get(f"{base}/seen")[1])) == ["ada", "bob", "cy"], 10,
                   what="the listener thread to handle the app's events")

        # Events fired elsewhere reach the app's listener too.
        other = lightbus_sync.create(redis_url=redis_url, service_name="elsewhere", config=fast_config())
        try:
            other.runner_test_web.user_signed_up.fire(username="dee")
        finally:
            other.close()
        wait_until(lambda: "dee" in json.loads(get(f"{base}/seen")[1]), 10, what="an event from elsewhere")
        wait_until(lambda: pending_count(redis_client, "runner_test_web.*:stream", "web-welcome_mail") == 0, 5,
                   what="acks")
        assert sorted(json.loads(get(f"{base}/seen")[1])) == ["ada", "bob", "cy", "dee"]
    finally:
        app.terminate()
        app.wait(10)
