"""chain_stop_signals: the clean-up first, then what the signal did before."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lightbus_sync.stop_signals import chain_stop_signals

REPO_ROOT = Path(__file__).resolve().parent.parent
SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


@pytest.fixture(autouse=True)
def keep_handlers():
    saved = {signum: signal.getsignal(signum) for signum in SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_the_cleanup_runs_then_the_apps_handler():
    calls = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append(("app", signum)))
    assert chain_stop_signals(lambda: calls.append(("cleanup",)), SIGNALS[:1]) is True
    signal.raise_signal(signal.SIGUSR1)
    assert calls == [("cleanup",), ("app", signal.SIGUSR1)]


def test_an_ignored_signal_stays_ignored():
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    chain_stop_signals(lambda: None, SIGNALS[1:])
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_IGN


def test_a_failing_cleanup_is_logged_and_the_apps_handler_still_runs(caplog):
    calls = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append("app"))

    def cleanup():
        raise RuntimeError("boom")

    chain_stop_signals(cleanup, SIGNALS[:1])
    signal.raise_signal(signal.SIGUSR1)
    assert calls == ["app"]
    assert "stopping on SIGUSR1 failed" in caplog.text and "RuntimeError: boom" in caplog.text


def test_a_second_signal_during_the_cleanup_goes_straight_to_the_previous_action():
    calls = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append("app"))

    def cleanup():
        calls.append("cleanup")
        signal.raise_signal(signal.SIGUSR1)  # arrives while cleaning up
        calls.append("cleanup done")

    chain_stop_signals(cleanup, SIGNALS[:1])
    signal.raise_signal(signal.SIGUSR1)
    assert calls == ["cleanup", "app", "cleanup done", "app"]


def test_outside_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGUSR1)
    result = []
    thread = threading.Thread(target=lambda: result.append(chain_stop_signals(lambda: None, SIGNALS[:1])))
    thread.start()
    thread.join(10)
    assert result == [False] and signal.getsignal(signal.SIGUSR1) is before


def test_a_default_action_is_taken_after_the_cleanup():
    """SIGTERM's default (terminate) still ends the process, with the same status."""
    code = (
        "import os, signal, sys\n"
        "from lightbus_sync.stop_signals import chain_stop_signals\n"
        "chain_stop_signals(lambda: print('cleaned up', flush=True))\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "print('not reached')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == -signal.SIGTERM
    assert result.stdout == "cleaned up\n"
