"""``lightbus-sync dashboard``: serve the web dashboard (waitress) until SIGTERM/SIGINT.

Binds 127.0.0.1 unless ``--host`` says otherwise. Read-only unless an action token is
given in ``$LIGHTBUS_DASHBOARD_TOKEN`` or ``--action-token-file`` (never on the
command line, where other users could read it). Exit codes as the ops commands: 0
stopped, 2 bad arguments, configuration or a port that cannot be bound, 3 the bus
module failed to import.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any, Optional

from .cli_common import EXIT_CONFIG, EXIT_OK
from .cli_ops import _common, _run

ENV_TOKEN = "LIGHTBUS_DASHBOARD_TOKEN"


def add_dashboard_command(sub: Any, bus_module: bool = True) -> None:
    """Add ``dashboard`` to the ``lightbus-sync`` parser's subcommands (without
    ``bus_module``, for a framework's command that supplies the bus: no bus and config options)."""
    from .dashboard.server import DEFAULT_HOST, DEFAULT_PORT

    parser = sub.add_parser(
        "dashboard", help="serve a web dashboard: streams, groups and lag, events, dead letters",
        description="Serve the dashboard (needs pip install 'lightbus_sync[dashboard]'). It shows every "
                    "event stream on the Redis server(s), the bus module's APIs and listeners, and --api ones. "
                    f"Read-only unless an action token is set (${ENV_TOKEN} or --action-token-file).",
    )
    _common(parser, bus_module)
    parser.add_argument("--api", action="append", default=[], metavar="NAME",
                        help="also show this API's stream(s) (repeatable; API or API.EVENT)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--action-token-file", metavar="PATH",
                        help=f"file holding the action token that enables replay and purge (else ${ENV_TOKEN})")
    parser.add_argument("--sample-interval", type=float, default=5.0, metavar="SECONDS",
                        help="seconds between lag samples for the charts (default 5)")
    parser.add_argument("--no-discover", action="store_true",
                        help="show only the bus module's and --api streams, not every stream found on Redis")
    parser.add_argument("--threads", type=int, default=4, help="server threads (default 4)")
    parser.set_defaults(func=command_dashboard)


def _action_token(args: argparse.Namespace) -> Optional[str]:
    if args.action_token_file:
        try:
            return Path(args.action_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"--action-token-file {args.action_token_file!r}: {exc.strerror}") from None
    return os.environ.get(ENV_TOKEN) or None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def command_dashboard(args: argparse.Namespace) -> int:
    from .dashboard import Dashboard, make_server
    from .dashboard.server import run_until_stopped

    if args.sample_interval <= 0:
        print(f"lightbus-sync: --sample-interval: expected seconds > 0, got {args.sample_interval}", file=sys.stderr)
        return EXIT_CONFIG

    def body(bus: Any, from_module: bool) -> int:
        dashboard = Dashboard(bus, apis=args.api, include_local=from_module, discover=not args.no_discover,
                              action_token=_action_token(args), sample_interval=args.sample_interval)
        server = make_server(dashboard, args.host, args.port, threads=args.threads)
        if not _is_loopback(args.host):
            print(f"lightbus-sync: WARNING: the dashboard is reachable from other machines on {args.host}; "
                  f"it has no login", file=sys.stderr)
        mode = "actions enabled" if dashboard.guard.actions_enabled else "read-only"
        print(f"lightbus-sync: dashboard on http://{args.host}:{server.effective_port}/ ({mode})",
              file=sys.stderr, flush=True)
        dashboard.start()
        try:
            run_until_stopped(server)
        finally:
            dashboard.stop()
        return EXIT_OK

    return _run(args, body)
