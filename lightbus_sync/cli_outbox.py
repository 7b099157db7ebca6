"""``lightbus-sync outbox init | relay | ddl``: the transactional outbox's commands.

``init`` creates the tables (``--db`` or ``bus.outbox.url``); ``ddl`` prints their SQL
for migrations; ``relay`` publishes committed rows until SIGTERM/SIGINT. ``lightbus-sync
run`` also relays when ``bus.outbox.url`` is configured (``start_configured_relay``).

Exit codes: 0 done; 1 the relay thread died; 2 bad arguments or configuration, or the
database unreachable; 3 the bus module failed to import (traceback printed).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any, Optional

from .errors import LightbusError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_IMPORT = 3

logger = logging.getLogger("lightbus_sync.cli")


def add_outbox_commands(sub: Any, bus_module: bool = True) -> None:
    """Add ``outbox`` and its subcommands to the ``lightbus-sync`` parser's subcommands.
    Without ``bus_module`` (a framework's command, which supplies the bus and creates the
    tables with its own migrations): ``relay`` alone, without bus and config options."""
    outbox = sub.add_parser("outbox", help="the transactional outbox: create its tables, relay it to Redis")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)

    if bus_module:
        init = outbox_sub.add_parser("init", help="create the outbox and inbox tables (idempotent)")
        _common(init)
        init.set_defaults(func=command_init)

    relay = outbox_sub.add_parser("relay", help="publish committed outbox rows to Redis until SIGTERM/SIGINT")
    _common(relay, config=bus_module)
    if bus_module:
        relay.add_argument("--bus", "-b", help="bus module to import (default $LIGHTBUS_MODULE; optional)")
        relay.add_argument("--redis-url", help="Redis URL for every API (default $LIGHTBUS_REDIS_URL or the config)")
    relay.set_defaults(func=command_relay)

    if bus_module:
        ddl = outbox_sub.add_parser("ddl", help="print the SQL that creates the tables (for migrations)")
        ddl.add_argument("--dialect", default="postgresql", help="postgresql (default), sqlite, mysql...")
        ddl.set_defaults(func=command_ddl)


def _common(parser: argparse.ArgumentParser, config: bool = True) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL of the database (default bus.outbox.url / $LIGHTBUS_OUTBOX_URL)")
    if config:
        parser.add_argument("--config", "-c", help="config file (YAML, JSON or TOML; default $LIGHTBUS_CONFIG)")


def _database_url(args: argparse.Namespace, bus_config: Any = None) -> str:
    if args.db:
        return str(args.db)
    if bus_config is None:
        from .config import load_config

        bus_config = load_config(getattr(args, "config", None))
    url: Optional[str] = bus_config.bus.outbox.url
    if url is None:
        raise LightbusError("no outbox database: pass --db URL, or set bus.outbox.url / $LIGHTBUS_OUTBOX_URL")
    return url


def command_init(args: argparse.Namespace) -> int:
    from .outbox import create_tables
    from .outbox.urls import relay_engine, safe_url

    try:
        url = _database_url(args)
        engine = relay_engine(url)
    except (LightbusError, ValueError) as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        create_tables(engine)
    except Exception as exc:
        print(f"lightbus-sync: cannot create the tables in {safe_url(url)}: {type(exc).__name__}: "
              f"{_first_line(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        engine.dispose()
    print(f"outbox tables ready in {safe_url(url)}")
    return EXIT_OK


def command_ddl(args: argparse.Namespace) -> int:
    from .outbox import ddl

    try:
        print(ddl(args.dialect), end="")
    except Exception as exc:
        print(f"lightbus-sync: no SQL for dialect {args.dialect!r}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def command_relay(args: argparse.Namespace) -> int:
    from .cli_common import BusModuleImportFailed, load_command_bus

    try:
        bus, _ = load_command_bus(args, service_name="lightbus-sync-outbox")
    except BusModuleImportFailed:
        return EXIT_IMPORT
    try:
        relay = bus.start_outbox_relay(_database_url(args, bus.config))
    except (LightbusError, ValueError) as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        bus.close()
        return EXIT_CONFIG
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    logger.info("relaying the outbox of %r", relay)
    try:
        while not stop.wait(0.5):
            if not relay.is_alive():
                logger.critical("the outbox relay thread died")
                return EXIT_FAILED
        return EXIT_OK if relay.stop() else EXIT_FAILED
    finally:
        bus.close()


def start_configured_relay(bus: Any) -> Optional[Any]:
    """For ``lightbus-sync run``: a started relay when ``bus.outbox.url`` is configured, else None."""
    if bus.config.bus.outbox.url is None:
        return None
    relay = bus.start_outbox_relay()
    logger.info("relaying the outbox of %r", relay)
    return relay


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else ""
