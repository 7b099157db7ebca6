"""Serving the dashboard with waitress (a production WSGI server in pure Python).

waitress needs no compiler and no C extension, runs on every platform this package
supports, serves with a thread pool (pages wait on Redis, not on the CPU) and is
what ``pip install 'lightbus_sync[dashboard]'`` brings in.
"""

from __future__ import annotations

import signal
from typing import Any, Callable

from ..errors import LightbusError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8642


def make_server(app: Callable, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, threads: int = 4) -> Any:
    """A waitress server for ``app``, bound (port 0: a free port; see ``.effective_port``),
    not yet running: call ``.run()``, and ``.close()`` to stop."""
    try:
        import waitress
    except ImportError:
        raise LightbusError("the dashboard needs waitress: pip install 'lightbus_sync[dashboard]'") from None
    try:
        return waitress.create_server(app, host=host, port=port, threads=threads, ident="lightbus-sync",
                                      clear_untrusted_proxy_headers=True)
    except OSError as exc:
        raise LightbusError(f"cannot serve the dashboard on {host}:{port}: {exc}") from None


def run_until_stopped(server: Any) -> None:
    """Serve until SIGTERM or SIGINT."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
