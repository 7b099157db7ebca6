"""systemd's notify protocol (``Type=notify``): one datagram to ``$NOTIFY_SOCKET``.

Does nothing when the process was not started by systemd (no ``NOTIFY_SOCKET``).
"""

from __future__ import annotations

import os
import socket
from typing import Mapping, Optional


def notify(message: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``, ``"STATUS=..."``); True if sent."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError:
        return False


def watchdog_interval(environ: Optional[Mapping[str, str]] = None) -> Optional[float]:
    """Half of ``$WATCHDOG_USEC`` in seconds (how often to send ``WATCHDOG=1``), or None
    if the watchdog is off or meant for another process (``$WATCHDOG_PID``)."""
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        return int(usec) / 1_000_000 / 2
    except ValueError:
        return None
