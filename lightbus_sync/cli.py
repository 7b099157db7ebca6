"""The ``lightbus-sync`` command (also ``python -m lightbus_sync``): ``run`` a service's
listeners, ``dumpschema``, ``demo``, and the operations commands of ``cli_ops``.

Exit statuses (``EXIT_STATUSES`` is the text every ``--help`` shows): 0 done (``run``: a
clean stop); 1 failed (the runner failed, or its drain did not finish; a ``status
--check`` threshold exceeded; dead letters not acted on); 2 bad arguments or
configuration; 3 the bus module could not be imported (missing: one line; raised on
import or in ``before_server_start()``: traceback); 4 Redis unavailable or refusing a
command.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Optional, Sequence

from . import __version__
from . import config as config_module
from .bus_module import BusModuleNotFound
from .errors import AccessRefused, BusUnavailable, LightbusError

from .cli_common import (  # noqa: F401 (BusModuleImportFailed, load_command_bus: the CLI's API)
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_IMPORT,
    EXIT_OK,
    EXIT_REDIS,
    BusModuleImportFailed,
    apply_environment,
    load_command_bus,
)

DESCRIPTION = """\
Reliable events between synchronous Python services over Redis Streams, speaking
the Lightbus 1.x wire format. 'lightbus-sync COMMAND --help' describes a command."""

EXIT_STATUSES = """\
exit statuses:
  0  done (run: stopped cleanly after SIGTERM or SIGINT)
  1  failed: the runner failed or its drain did not finish (run); a threshold
     was exceeded (status --check); some dead letters were not acted on
  2  bad arguments or configuration
  3  the bus module could not be imported: it does not exist (one line), or it
     raised on import or in before_server_start() (traceback)
  4  Redis unavailable, or refusing a command"""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

logger = logging.getLogger("lightbus_sync.cli")


def _setup_logging(level: str, fmt: str) -> None:
    from .logs import configure_logging

    configure_logging(level, fmt)


def command_run(args: argparse.Namespace) -> int:
    """Run a bus's listeners until SIGTERM/SIGINT (the bus module's, or ``args.load_bus()``'s)."""
    from . import supervisor, systemd
    from .bus_module import import_bus_module
    from .runner import Runner

    # Handlers first: a stop asked for while the bus module loads ends the start cleanly
    # (exit 0, nothing read) instead of killing the process by the signal's default action.
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stop_requested.is_set():
            # Second signal: leave at once; unfinished entries stay pending for reclaim.
            os._exit(EXIT_FAILED)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    apply_environment(args)
    loader = getattr(args, "load_bus", None)
    try:
        processes = supervisor.processes_wanted(args)
        if processes > 1:
            return supervisor.run_supervisor(args, processes)
        module, bus = loader() if loader is not None else import_bus_module(args.bus)
    except BusModuleNotFound as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_IMPORT
    except LightbusError as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception:
        name = getattr(args, "bus", None) or os.environ.get(config_module.ENV_MODULE) or "bus"
        print(f"lightbus-sync: the bus module {name!r} failed to import:", file=sys.stderr)
        traceback.print_exc()
        return EXIT_IMPORT
    try:
        if args.schema:
            loaded = bus.schemas.load_files(args.schema)
            logger.info("loaded schema(s) of %s from %s", ", ".join(loaded) or "no API", args.schema)
        hook = getattr(module, "before_server_start", None)
        if callable(hook):
            try:
                hook()
            except LightbusError:
                raise
            except Exception:
                print("lightbus-sync: before_server_start() of the bus module failed:", file=sys.stderr)
                traceback.print_exc()
                return EXIT_IMPORT
        runner = Runner(
            bus, threads=args.threads, prefetch=args.prefetch, shutdown_timeout=args.shutdown_timeout,
            listener_names=args.listener or None,
        )
        # A supervised child writes its metrics for the parent to serve (multiprocess mode).
        shared_metrics = supervisor.is_child() and bool(os.environ.get(supervisor.ENV_METRICS_DIR))
        if args.metrics_port is not None or shared_metrics:
            from .metrics import instrument

            metrics = instrument(bus, runner, multiprocess=shared_metrics)
            if bus.config.bus.outbox.url is not None:
                metrics.attach_outbox(bus.config.bus.outbox.url)
    except LightbusError as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    watchdog = systemd.watchdog_interval()
    tick = min(watchdog, 5.0) if watchdog else 5.0
    if supervisor.is_child():
        tick = min(tick, supervisor.CHILD_STATUS_INTERVAL)
    last_ping: Optional[float] = None
    last_status = ""

    def ping_watchdog() -> None:
        nonlocal last_ping
        now = time.monotonic()
        if watchdog and (last_ping is None or now - last_ping >= watchdog):
            systemd.notify("WATCHDOG=1")
            last_ping = now

    from .cli_outbox import start_configured_relay

    if stop_requested.is_set():
        logger.info("stop requested while starting: exiting before reading")
        return EXIT_OK
    try:
        runner.start()
    except AccessRefused as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    relay = start_configured_relay(bus)  # bus.outbox.url configured: relay it too
    if relay is not None:
        bus.stop_hooks.append(relay.stop)
    if args.metrics_port is not None:
        try:
            metrics.serve(args.metrics_port, args.metrics_host)
        except LightbusError as exc:
            print(f"lightbus-sync: {exc}", file=sys.stderr)
            runner.stop(min(runner.shutdown_timeout, 5))
            return EXIT_CONFIG
    while not runner.wait_until_ready(0.2):
        if stop_requested.is_set() or runner.wait(0):
            break
    if not stop_requested.is_set() and not runner.wait(0):
        last_status = runner.status_line()
        systemd.notify("READY=1\nSTATUS=" + last_status)
    while not stop_requested.is_set() and not runner.wait(0):
        if not runner.healthy() or (relay is not None and not relay.is_alive()):
            logger.critical("a runner thread died; exiting so the service manager restarts us")
            runner.stop(min(runner.shutdown_timeout, 5))
            return EXIT_FAILED
        ping_watchdog()
        if shared_metrics:
            metrics.refresh()
        status = runner.status_line()
        if status != last_status:
            systemd.notify("STATUS=" + status)
            last_status = status
        stop_requested.wait(tick)
    if runner.failure is not None:
        runner.wait(runner.shutdown_timeout + 5)
        logger.critical("runner stopped: %s", runner.failure)
        return EXIT_CONFIG if runner.failure_is_access else EXIT_FAILED
    logger.info("stopping: letting in-flight handlers finish (up to %.0fs)", runner.shutdown_timeout)
    systemd.notify(
        f"STOPPING=1\nSTATUS=draining\nEXTEND_TIMEOUT_USEC={int((runner.shutdown_timeout + 5) * 1_000_000)}"
    )
    # Drain on another thread so this one keeps answering the watchdog and a second signal.
    drain = threading.Thread(target=runner.stop, name="lightbus-drain", daemon=True)
    drain.start()
    while drain.is_alive():
        ping_watchdog()
        drain.join(min(tick, 1.0))
    if not runner.stop():  # the drain's result
        logger.error("stopped with handlers unfinished at the shutdown timeout; their entries stay pending")
        return EXIT_FAILED
    return EXIT_OK


def command_dumpschema(args: argparse.Namespace) -> int:
    """Write the local and remote schemas: to stdout as one JSON object, to a file, or
    one ``<api>.json`` (``{api: document}``) per API into a directory (``--out DIR/``, or an existing directory)."""
    import json
    from pathlib import Path

    from .schema import encode_schema

    try:
        bus, _ = load_command_bus(args)
    except BusModuleImportFailed:
        return EXIT_IMPORT
    try:
        bus.schemas.load_remote()
        names = sorted({d.name for d in bus.local_apis()} | set(bus.schemas.remote_names()))
        documents = {name: bus.schemas.document(name) for name in names}
    finally:
        bus.close()
    indent = 2 if bus.config.bus.schema.human_readable else None

    def render(document: object) -> str:
        return json.dumps(document, indent=indent, sort_keys=True) if indent else encode_schema(document)

    if not args.out:
        print(render(documents))
        return EXIT_OK
    out = Path(args.out)
    if out.is_dir() or args.out.endswith(("/", os.sep)):
        out.mkdir(parents=True, exist_ok=True)
        for name, document in documents.items():  # {name: document} per file, as Lightbus writes and reads them
            (out / f"{name}.json").write_text(render({name: document}) + "\n", encoding="utf-8")
        print(f"wrote {len(documents)} schema(s) to {out}/", file=sys.stderr)
    else:
        out.write_text(render(documents) + "\n", encoding="utf-8")
        print(f"wrote {len(documents)} schema(s) to {out}", file=sys.stderr)
    return EXIT_OK


def command_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(redis_url=args.redis_url, count=args.count)


def log_level(value: str) -> str:
    """``--log-level``: a level name, any case; anything else is a usage error (exit 2)."""
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"unknown log level {value!r}: use one of {', '.join(LOG_LEVELS)}")
    return level


def _with_exit_statuses(parser: argparse.ArgumentParser) -> None:
    """Every parser's --help ends with the exit statuses, its text shown as written."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if parser.epilog is None:
        parser.epilog = EXIT_STATUSES
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _with_exit_statuses(subparser)


def add_run_arguments(run: argparse.ArgumentParser, bus_module: bool = True) -> None:
    """The options of ``run`` (shared by frameworks' run commands, which have no ``--bus``)."""
    if bus_module:
        run.add_argument("--bus", "-b", help="the bus module to import (default $LIGHTBUS_MODULE, else 'bus')")
    run.add_argument("--config", "-c", help="config file (YAML, JSON or TOML; default $LIGHTBUS_CONFIG)")
    run.add_argument("--redis-url", help="Redis URL for every API (default $LIGHTBUS_REDIS_URL or the config)")
    run.add_argument("--service-name", "-s", help="names the consumer groups: {service}-{listener}")
    run.add_argument("--process-name", "-p", help="the consumer name; keep it stable across restarts of one process slot")
    run.add_argument("--log-level", type=log_level, default=argparse.SUPPRESS,
                     help="as the global --log-level (Lightbus's place for it)")
    run.add_argument("--threads", "-t", type=int, help="worker threads (default 8)")
    run.add_argument("--processes", type=int, help="runner processes, each with --threads threads, started and "
                     "restarted by this one (default 1; config bus.runner.processes)")
    run.add_argument("--prefetch", type=int, help="entries read ahead of the workers (default: the larger of 2 x threads and 2 x batch_size)")
    run.add_argument("--shutdown-timeout", type=float, help="seconds to drain on SIGTERM (default 30)")
    run.add_argument("--listener", action="append", help="run only this listener (repeatable)")
    run.add_argument("--schema", "-m", help="load schemas of remote APIs from this file or directory")
    run.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (/metrics); "
                     "needs pip install 'lightbus_sync[metrics]'")
    run.add_argument("--metrics-host", default="0.0.0.0", help="address to serve metrics on (default 0.0.0.0)")
    run.set_defaults(func=command_run)


def add_dumpschema_command(sub: Any, bus_module: bool = True) -> None:
    """Add ``dumpschema`` to a parser's subcommands (``sub``: what ``add_subparsers()``
    returned). Without ``bus_module`` (a framework's command, which supplies the bus)
    there are no bus and config options."""
    dump = sub.add_parser("dumpschema", help="write the schemas of local and remote APIs")
    if bus_module:
        dump.add_argument("--bus", "-b", help="the bus module defining local APIs (optional)")
        dump.add_argument("--config", "-c", help="config file")
        dump.add_argument("--redis-url", help="Redis URL")
    dump.add_argument("--out", "-o", help="a file, or a directory (one <api>.json each); default stdout")
    dump.set_defaults(func=command_dumpschema)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightbus-sync", description=DESCRIPTION, epilog=EXIT_STATUSES)
    parser.add_argument("--version", action="version", version=f"lightbus-sync {__version__}")
    parser.add_argument("--log-level", type=log_level, default=os.environ.get("LIGHTBUS_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default INFO, or $LIGHTBUS_LOG_LEVEL)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    run = sub.add_parser("run", help="run the listeners of a bus module until SIGTERM or SIGINT")
    add_run_arguments(run)

    add_dumpschema_command(sub)

    demo = sub.add_parser("demo", help="fire and receive a few events (embedded Redis unless configured)")
    demo.add_argument("--redis-url", default=os.environ.get(config_module.ENV_REDIS_URL),
                      help="use this Redis instead of an embedded one")
    demo.add_argument("--count", type=int, default=5, help="how many events to fire")
    demo.set_defaults(func=command_demo)

    from .cli_ops import add_ops_commands

    add_ops_commands(sub)  # status, inspect, dead-letters
    from .cli_dashboard import add_dashboard_command

    add_dashboard_command(sub)

    from .cli_outbox import add_outbox_commands

    add_outbox_commands(sub)  # outbox init, relay, ddl
    _with_exit_statuses(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what a supervisor (run --processes N) gives its children
    return run_parsed(args)


def run_parsed(args: argparse.Namespace) -> int:
    """Run the command of parsed arguments, with logging set up; its exit code."""
    _setup_logging(args.log_level, args.log_format)
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run the command of parsed arguments (logging already set up); its exit code, with
    Redis unavailable (4) and other lightbus_sync errors (2) reported in one line."""
    import redis

    from .transport import TRANSIENT_ERRORS

    try:
        return int(args.func(args))
    except BusUnavailable as exc:
        print(f"lightbus-sync: Redis unavailable: {exc}", file=sys.stderr)
        return EXIT_REDIS
    except TRANSIENT_ERRORS as exc:  # a command reading Redis directly (dumpschema)
        print(f"lightbus-sync: Redis unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_REDIS
    except redis.RedisError as exc:
        print(f"lightbus-sync: Redis refused a command: {exc}", file=sys.stderr)
        return EXIT_REDIS
    except LightbusError as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
