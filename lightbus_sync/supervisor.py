"""``lightbus-sync run --processes N``: a parent process that runs N runner processes
and keeps them running.

Each child is ``lightbus-sync run`` with the parent's own arguments, in a *slot*
``k`` (0 .. N-1) whose consumer name is ``<process_name>-<k>`` (``process_name``:
``--process-name``, ``$LIGHTBUS_PROCESS_NAME``, the config file's, else
``<hostname>-<pid of the parent>``). A child restarted in its slot therefore drains
its own pending entries first, as a restarted single process does.

The parent:

- restarts a child that exits, after a backoff (0.5 s, doubling up to 30 s; back to
  0.5 s once a child has been up for a minute). A child that exits 2 (configuration)
  or 3 (the bus module failed to import, or ``before_server_start()`` raised) would
  fail the same way again: the parent stops the other children and exits with that
  code, without restarting anything;
- on SIGTERM/SIGINT sends SIGTERM to every child, which drains as a single
  ``lightbus-sync run`` does, and waits for them up to the shutdown timeout (+5 s;
  children still running then are killed). Exit 0 if every child exited 0, else 1.
  A second signal is passed on too (each child then leaves at once) and the parent
  exits 1;
- alone speaks systemd's notify protocol: each child's ``$NOTIFY_SOCKET`` is a private
  socket of the parent. ``READY=1`` once every slot is ready, ``STATUS=`` with the
  totals the children last reported, ``WATCHDOG=1`` while it runs; a ready child
  that stops answering its own watchdog (the service's ``WATCHDOG_USEC``) for twice
  that long is killed and restarted;
- serves the metrics of every child on one ``/metrics`` (``--metrics-port``), with
  prometheus_client's multiprocess mode: the children write them to a private
  directory that the parent reads at each scrape.

Children run in their own process group (a Ctrl-C in a terminal reaches the parent
only, which passes it on) and get SIGTERM if the parent dies (Linux).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from . import systemd
from .backoff import Backoff
from .cli_common import EXIT_CONFIG, EXIT_IMPORT
from .config import default_process_name, load_config

__all__ = ["Supervisor", "is_child", "processes_wanted", "run_supervisor"]

logger = logging.getLogger("lightbus_sync.supervisor")

#: Set in a child's environment: its slot number (also marks the process as a child).
ENV_SLOT = "LIGHTBUS_SYNC_SLOT"
#: Set in a child's environment: the consumer name of its slot.
ENV_SLOT_NAME = "LIGHTBUS_SYNC_SLOT_NAME"
#: Set in a child's environment: the parent's pid (a child whose parent is gone exits).
ENV_PARENT_PID = "LIGHTBUS_SYNC_PARENT_PID"
#: prometheus_client's own variable: where children write metrics in multiprocess mode.
ENV_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"

#: Child exit codes that a restart cannot fix.
PERMANENT_EXITS = (EXIT_CONFIG, EXIT_IMPORT)
#: Pauses before restarting a slot: 0.5 s doubling up to 30 s; back to 0.5 s after a
#: child that stayed up a minute.
RESTART_FIRST, RESTART_LONGEST, RESTART_RESET_AFTER = 0.5, 30.0, 60.0
#: Extra time, beyond the shutdown timeout, given to children to exit on stop.
STOP_GRACE = 5.0
#: How often children report their status to the parent (seconds).
CHILD_STATUS_INTERVAL = 1.0

_COUNTS = re.compile(r"(in flight|processed|failed|dead-lettered) (\d+)")


def is_child(environ: Optional[Mapping[str, str]] = None) -> bool:
    """True in a process started by a supervisor for one of its slots."""
    return ENV_SLOT in (os.environ if environ is None else environ)


def processes_wanted(args: argparse.Namespace) -> int:
    """How many runner processes ``lightbus-sync run`` should have: ``--processes``, else
    ``bus.runner.processes`` of the config file (``--config`` / ``$LIGHTBUS_CONFIG``);
    1 in a supervised child. Raises ConfigurationError for a value below 1."""
    from .errors import ConfigurationError

    if is_child():
        return 1
    value = getattr(args, "processes", None)
    if value is None:
        return load_config(args.config).bus.runner.processes
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"--processes must be an integer >= 1, got {value!r}")
    return value


def counts_of(status: str) -> dict[str, int]:
    """The counters in a runner's status line (``in flight 2, processed 10, ...``)."""
    return {key: int(value) for key, value in _COUNTS.findall(status)}


def _restart_backoff() -> Backoff:
    return Backoff(RESTART_FIRST, RESTART_LONGEST)


@dataclass
class Slot:
    """One child process slot: its consumer name, notify socket and state."""

    index: int
    name: str
    socket_path: str
    sock: socket.socket
    backoff: Backoff = field(default_factory=_restart_backoff)
    process: Optional["subprocess.Popen[bytes]"] = None
    started_at: float = 0.0
    ready: bool = False
    status: str = ""
    last_ping: float = 0.0
    restart_at: Optional[float] = None
    restarts: int = 0
    #: Counters of this slot's previous children (their last report), kept in the totals.
    carried: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Counters of the slot: carried ones plus the running child's."""
        current = counts_of(self.status)
        return {key: self.carried.get(key, 0) + current.get(key, 0) for key in set(current) | set(self.carried)}


class Supervisor:
    """Runs ``processes`` children of ``child_command`` (each gets its slot in its
    environment) until a signal; see the module docstring for the contract.

    ``run()`` blocks and returns the exit code.
    """

    def __init__(
        self,
        child_command: Sequence[str],
        processes: int,
        process_name: str,
        *,
        shutdown_timeout: float,
        metrics_port: Optional[int] = None,
        metrics_host: str = "0.0.0.0",
        environ: Optional[dict[str, str]] = None,
    ) -> None:
        self.child_command = list(child_command)
        self.processes = processes
        self.process_name = process_name
        self.shutdown_timeout = shutdown_timeout
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.environ = dict(os.environ if environ is None else environ)
        self._dir = tempfile.mkdtemp(prefix="lightbus-sync-supervisor-")
        self._metrics_dir: Optional[str] = None
        self._metrics_server: Any = None
        self._selector = selectors.DefaultSelector()
        self.slots: list[Slot] = []
        self._signals = 0
        self._watchdog = systemd.watchdog_interval(self.environ)
        self._watchdog_usec = self.environ.get("WATCHDOG_USEC") if self._watchdog else None
        self._last_watchdog: Optional[float] = None
        self._last_status = ""
        self._ready_sent = False

    # --- set-up ------------------------------------------------------------------------

    def _make_slots(self) -> None:
        for index in range(self.processes):
            path = os.path.join(self._dir, f"slot-{index}.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.setblocking(False)
            slot = Slot(index=index, name=f"{self.process_name}-{index}", socket_path=path, sock=sock)
            self._selector.register(sock, selectors.EVENT_READ, slot)
            self.slots.append(slot)

    def _serve_metrics(self) -> None:
        """Serve every child's metrics on ``metrics_port`` (called only when it is set)."""
        from .errors import ConfigurationError

        port = self.metrics_port
        assert port is not None

        try:
            from prometheus_client import CollectorRegistry, multiprocess, start_http_server
        except ImportError:
            raise ConfigurationError(
                "Prometheus metrics need the prometheus-client package: pip install 'lightbus_sync[metrics]'"
            ) from None
        self._metrics_dir = os.path.join(self._dir, "metrics")
        os.mkdir(self._metrics_dir)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self._metrics_dir)  # type: ignore[no-untyped-call]
        try:
            result = start_http_server(port, addr=self.metrics_host, registry=registry)
        except OSError as exc:
            raise ConfigurationError(f"cannot serve metrics on {self.metrics_host}:{self.metrics_port}: {exc}") from None
        self._metrics_server = result[0] if isinstance(result, tuple) else result
        logger.info("serving the metrics of %d processes on http://%s:%d/metrics", self.processes,
                    self.metrics_host, self.metrics_port)

    def _child_env(self, slot: Slot) -> dict[str, str]:
        env = {k: v for k, v in self.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", ENV_METRICS_DIR)}
        env["NOTIFY_SOCKET"] = slot.socket_path
        env[ENV_SLOT] = str(slot.index)
        env[ENV_SLOT_NAME] = slot.name
        env[ENV_PARENT_PID] = str(os.getpid())
        if self._watchdog_usec:
            env["WATCHDOG_USEC"] = self._watchdog_usec
        if self._metrics_dir:
            env[ENV_METRICS_DIR] = self._metrics_dir
        return env

    def _start(self, slot: Slot) -> None:
        slot.process = subprocess.Popen(self.child_command, env=self._child_env(slot), stdin=subprocess.DEVNULL,
                                        **_OWN_PROCESS_GROUP)
        slot.started_at = time.monotonic()
        slot.last_ping = slot.started_at
        slot.ready = False
        slot.status = ""
        slot.restart_at = None
        logger.info("slot %d: started process %d as consumer %r", slot.index, slot.process.pid, slot.name)

    # --- the loop ----------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1

    def run(self) -> int:
        """Start the children and supervise them until stopped; return the exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._make_slots()
            if self.metrics_port is not None:
                self._serve_metrics()
            for slot in self.slots:
                self._start(slot)
            logger.info("supervising %d runner processes (consumers %s)", self.processes,
                        ", ".join(s.name for s in self.slots))
            code = self._supervise()
            if code is None:
                code = self._stop()
            return code
        finally:
            self._kill_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._close()

    def _supervise(self) -> Optional[int]:
        """Until a signal (returns None) or a permanent child failure (its exit code)."""
        while not self._signals:
            self._read_messages(0.2)
            now = time.monotonic()
            for slot in self.slots:
                code = self._check(slot, now)
                if code is not None:
                    return code
            self._ping_watchdog(now)
            self._report()
        return None

    def _check(self, slot: Slot, now: float) -> Optional[int]:
        """Reap, restart or watchdog one slot; return an exit code to stop with."""
        process = slot.process
        if process is None:
            if slot.restart_at is not None and now >= slot.restart_at:
                slot.restarts += 1
                self._start(slot)
            return None
        code = process.poll()
        if code is None:
            if self._watchdog and slot.ready and now - slot.last_ping > 4 * self._watchdog:
                logger.error("slot %d: process %d stopped answering its watchdog; killing it", slot.index,
                             process.pid)
                process.kill()
            return None
        uptime = now - slot.started_at
        self._forget(slot)
        if code in PERMANENT_EXITS:
            what = "its configuration is invalid" if code == 2 else \
                "the bus module failed to import or before_server_start() raised"
            logger.critical("slot %d: process exited %d (%s); stopping every process, no restart",
                            slot.index, code, what)
            self._signal_all(signal.SIGTERM)
            self._wait_all(time.monotonic() + self.shutdown_timeout + STOP_GRACE)
            return code
        if uptime >= RESTART_RESET_AFTER:  # it ran well: not a crash loop
            slot.backoff.reset()
        delay = slot.backoff.next()
        slot.restart_at = now + delay
        logger.error("slot %d: process %d exited with %s after %.1fs; restarting it in %.1fs", slot.index,
                     process.pid, _describe_exit(code), uptime, delay)
        return None

    def _forget(self, slot: Slot) -> None:
        """A slot's child has exited: keep its counters, drop its live metrics."""
        if slot.status:
            slot.carried = {k: v for k, v in slot.counts().items() if k != "in flight"}
        if slot.process is not None and self._metrics_dir:
            try:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(slot.process.pid, self._metrics_dir)  # type: ignore[no-untyped-call]
            except Exception:  # the files of a dead process: best effort
                logger.debug("could not drop the live metrics of %d", slot.process.pid, exc_info=True)
        slot.process = None
        slot.ready = False
        slot.status = ""

    def _read_messages(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            slot: Slot = key.data
            while True:
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except (BlockingIOError, InterruptedError):
                    break
                self._on_message(slot, data.decode("utf-8", "replace"))

    def _on_message(self, slot: Slot, message: str) -> None:
        for line in message.splitlines():
            key, _, value = line.partition("=")
            if key == "READY" and value == "1":
                slot.ready = True
                slot.last_ping = time.monotonic()
                logger.info("slot %d: ready", slot.index)
            elif key == "STATUS":
                slot.status = value
            elif key == "WATCHDOG" and value == "1":
                slot.last_ping = time.monotonic()

    def _ping_watchdog(self, now: float) -> None:
        if self._watchdog and (self._last_watchdog is None or now - self._last_watchdog >= self._watchdog):
            systemd.notify("WATCHDOG=1", self.environ)
            self._last_watchdog = now

    def status_line(self) -> str:
        """The totals of every slot, as sent in ``STATUS=``."""
        totals: dict[str, int] = {}
        for slot in self.slots:
            for key, value in slot.counts().items():
                totals[key] = totals.get(key, 0) + value
        ready = sum(1 for s in self.slots if s.ready)
        return (
            f"{ready}/{self.processes} processes ready, in flight {totals.get('in flight', 0)}, "
            f"processed {totals.get('processed', 0)}, failed {totals.get('failed', 0)}, "
            f"dead-lettered {totals.get('dead-lettered', 0)}, restarts {sum(s.restarts for s in self.slots)}"
        )

    def _report(self) -> None:
        status = self.status_line()
        if not self._ready_sent and all(s.ready for s in self.slots):
            systemd.notify("READY=1\nSTATUS=" + status, self.environ)
            self._ready_sent = True
            self._last_status = status
            logger.info("all %d processes ready", self.processes)
        elif status != self._last_status:
            systemd.notify("STATUS=" + status, self.environ)
            self._last_status = status

    # --- stopping ----------------------------------------------------------------------

    def _stop(self) -> int:
        """Pass the stop on to every child and wait for their drains."""
        deadline = time.monotonic() + self.shutdown_timeout + STOP_GRACE
        logger.info("stopping: %d processes drain (up to %.0fs)", self.processes, self.shutdown_timeout)
        systemd.notify(f"STOPPING=1\nSTATUS=draining\nEXTEND_TIMEOUT_USEC={int((deadline - time.monotonic()) * 1e6)}",
                       self.environ)
        self._signal_all(signal.SIGTERM)
        signals_seen = self._signals
        clean = True
        while any(s.process is not None for s in self.slots):
            if self._signals > signals_seen:  # a second signal: children leave at once
                signals_seen = self._signals
                clean = False
                self._signal_all(signal.SIGTERM)
            if time.monotonic() >= deadline:
                logger.error("processes still draining at the shutdown timeout; killing them")
                self._kill_all()
                return 1
            self._read_messages(0.1)
            self._ping_watchdog(time.monotonic())
            for slot in self.slots:
                if slot.process is None:
                    continue
                code = slot.process.poll()
                if code is None:
                    continue
                # A child stopped before it was ready held nothing: its signal death is clean.
                if code != 0 and not (code == -signal.SIGTERM and not slot.ready):
                    logger.error("slot %d: process exited with %s while draining", slot.index, _describe_exit(code))
                    clean = False
                self._forget(slot)
        logger.info("all processes stopped (%s)", "clean" if clean else "entries left pending")
        return 0 if clean else 1

    def _signal_all(self, signum: int) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                try:
                    slot.process.send_signal(signum)
                except ProcessLookupError:
                    pass

    def _wait_all(self, deadline: float) -> None:
        for slot in self.slots:
            if slot.process is None:
                continue
            try:
                slot.process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()
            self._forget(slot)

    def _kill_all(self) -> None:
        for slot in self.slots:
            if slot.process is not None:
                if slot.process.poll() is None:
                    slot.process.kill()
                slot.process.wait()
                self._forget(slot)

    def _close(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        for slot in self.slots:
            self._selector.unregister(slot.sock)
            slot.sock.close()
        self._selector.close()
        shutil.rmtree(self._dir, ignore_errors=True)


#: Children in a process group of their own (a terminal's Ctrl-C reaches the parent
#: only, which passes it on), but in the parent's session: same terminal, same
#: scheduler group (Linux autogroups are per session).
_OWN_PROCESS_GROUP: dict[str, Any] = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def base_process_name(args: argparse.Namespace) -> str:
    """The slots' common prefix: ``--process-name`` / ``$LIGHTBUS_PROCESS_NAME`` / the
    config file's ``process_name``, else ``<hostname>-<pid>`` of this (the parent) process."""
    if getattr(args, "process_name", None):
        return str(args.process_name)
    return load_config(args.config).process_name or default_process_name()


def run_supervisor(args: argparse.Namespace, processes: int) -> int:
    """``lightbus-sync run`` with ``processes`` > 1: run the children; the exit code."""
    config = load_config(args.config)
    shutdown_timeout = config.bus.runner.shutdown_timeout if args.shutdown_timeout is None else args.shutdown_timeout
    command = [sys.executable, "-m", "lightbus_sync.supervised", *args.argv]
    supervisor = Supervisor(command, processes, base_process_name(args), shutdown_timeout=shutdown_timeout,
                            metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    return supervisor.run()
