"""Running a clean-up on SIGTERM and SIGINT inside someone else's process (a web app),
without taking the signals from the handlers the app installed: ``chain_stop_signals``.

The clean-up runs first, then whatever the signal did before: the app's own handler is
called with the same arguments; Python's default SIGINT handler raises
``KeyboardInterrupt`` as before; a signal whose action was the default (SIGTERM's:
terminate) is delivered again with that default, so the process ends as it would have,
with the same status. A signal the app ignores stays ignored, and nothing is run for it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any, Callable, Optional, Sequence, Union

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_Handler = Union[Callable[[int, Optional[FrameType]], Any], int, signal.Handlers, None]


def chain_stop_signals(cleanup: Callable[[], Any], signals: Sequence[int] = STOP_SIGNALS) -> bool:
    """Run ``cleanup()`` when one of ``signals`` arrives, then the signal's previous
    action. Returns False (installing nothing) outside the main thread, where Python
    allows no signal handler: the caller then relies on ``atexit`` alone.

    ``cleanup`` runs in the main thread, between two bytecodes of whatever it was doing,
    so it must not need a lock that thread may hold; a second signal while it runs goes
    straight to the previous action (so a second Ctrl-C or SIGTERM still stops the
    process at once). A ``cleanup`` that raises is logged; the previous action still runs.
    """
    if threading.current_thread() is not threading.main_thread():
        logger.info("lightbus_sync: not in the main thread; stopping at exit only (no SIGTERM/SIGINT handler)")
        return False
    running = threading.Lock()  # one clean-up, whichever signal came first
    for signum in signals:
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN:
            continue
        signal.signal(signum, _chained(previous, cleanup, running))
    return True


def _chained(
    previous: _Handler, cleanup: Callable[[], Any], running: threading.Lock
) -> Callable[[int, Optional[FrameType]], Any]:
    def handler(received: int, frame: Optional[FrameType]) -> Any:
        if running.acquire(blocking=False):  # not already cleaning up (a second signal)
            try:
                logger.info("lightbus_sync: %s received; stopping the listeners", signal.Signals(received).name)
                cleanup()
            except Exception:
                logger.exception("lightbus_sync: stopping on %s failed", signal.Signals(received).name)
        return _previous_action(received, frame, previous)

    return handler


def _previous_action(signum: int, frame: Optional[FrameType], previous: _Handler) -> Any:
    if callable(previous):
        return previous(signum, frame)
    if previous is signal.SIG_IGN:
        return None
    # SIG_DFL, or None (a handler not installed from Python): the default action.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return None
