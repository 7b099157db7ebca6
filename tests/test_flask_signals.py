"""The Flask extension under ``flask run`` (a real process): SIGTERM (``docker stop``,
systemd) and SIGINT (Ctrl-C) drain the listener, its in-flight handler finishing and
being acked, and a SIGTERM handler the app installed still runs, after the drain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import lightbus_sync
from runner_apps.harness import APPS_DIR, REPO_ROOT, pending_count, wait_until
from test_runner_flask import free_port, get

STREAM = "runner_test_web.*:stream"
GROUP = "signals-slow_mail"


def start_app(tmp_path, redis_url, **env_extra):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "FLASK_", "WERKZEUG_"))}
    env.update(LIGHTBUS_REDIS_URL=redis_url, PYTHONPATH=os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)]),
               PYTHONUNBUFFERED="1", **env_extra)
    log_path = tmp_path / "flask.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "flask_signals_app", "run", "--host", "127.0.0.1",
             "--port", str(port), "--no-reload"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(APPS_DIR))
    wait_until(lambda: proc.poll() is not None or get(f"http://127.0.0.1:{port}/health")[0] == 200, 20,
               what="the app to be healthy")
    assert proc.poll() is None, log_path.read_text()
    return proc, log_path


def fire_and_wait_until_handling(redis_url, redis_client, username):
    other = lightbus_sync.create(redis_url=redis_url, service_name="elsewhere")
    try:
        other.runner_test_web.user_signed_up.fire(username=username)
    finally:
        other.close()
    wait_until(lambda: redis_client.exists(f"signals:started:{username}"), 10, what="the handler to start")
    assert not redis_client.exists(f"signals:finished:{username}")


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 0)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_drains_the_in_flight_handler(tmp_path, redis_url, redis_client, signum, status):
    proc, log_path = start_app(tmp_path, redis_url)
    try:
        fire_and_wait_until_handling(redis_url, redis_client, "ada")
        sent = time.monotonic()
        proc.send_signal(signum)
        proc.wait(30)
        output = log_path.read_text()
        # The process ends as the signal ends it (SIGTERM: killed by it; SIGINT: Flask's exit).
        assert proc.returncode == status, output
        assert redis_client.exists("signals:finished:ada"), output
        assert pending_count(redis_client, STREAM, GROUP) == 0, output
        assert f"{signal.Signals(signum).name} received; stopping the listeners" in output
        assert "listener stopped (clean)" in output
        assert time.monotonic() - sent < 25
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_apps_own_sigterm_handler_runs_after_the_drain(tmp_path, redis_url, redis_client):
    marker = tmp_path / "app-handler.txt"
    proc, log_path = start_app(tmp_path, redis_url, APP_SIGTERM_HANDLER=str(marker))
    try:
        fire_and_wait_until_handling(redis_url, redis_client, "bob")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        output = log_path.read_text()
        assert proc.returncode == 3, output  # the app's handler decided how to exit
        assert marker.read_text() == "SIGTERM signals:finished:bob", output
        assert pending_count(redis_client, STREAM, GROUP) == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_signals_are_left_alone_when_the_app_says_so(tmp_path, redis_url):
    """LIGHTBUS_STOP_ON_SIGNALS=False: the extension installs no handler."""
    code = (
        "import signal, flask\n"
        "from lightbus_sync.contrib.flask import LightbusSync\n"
        "import web_api\n"
        "app = flask.Flask('x')\n"
        f"app.config.update(LIGHTBUS_LISTEN=True, LIGHTBUS_STOP_ON_SIGNALS=False, LIGHTBUS_REDIS_URL={redis_url!r})\n"
        "ext = LightbusSync()\n"
        "ext.listen('runner_test_web.user_signed_up', listener_name='quiet')(lambda username: None)\n"
        "ext.init_app(app)\n"
        "assert ext.listener is not None\n"
        "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,"
        " signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
        "ext.stop_listener(1)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)])},
                            cwd=tmp_path)
    assert result.stdout.split() == ["True", "True"], result.stderr
