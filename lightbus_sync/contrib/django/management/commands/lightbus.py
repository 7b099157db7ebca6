"""``manage.py lightbus status|inspect|dead-letters|dumpschema|dashboard|outbox relay``: the
operations commands of ``lightbus-sync`` for the project's bus."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ..... import cli
from .....cli_dashboard import add_dashboard_command
from .....cli_ops import add_ops_commands
from .....cli_outbox import add_outbox_commands
from ...commands import namespace, setup_logging
from ...outbox import OUTBOX_SETTING
from ...project import project


class Command(BaseCommand):
    help = (
        "lightbus-sync's operations commands on the project's bus: status, inspect, dead-letters, "
        "dumpschema, dashboard, outbox relay (the tables come from manage.py migrate). Exit status: "
        "0 done, 1 a --check threshold exceeded or some ids not acted on (outbox relay: the relay "
        "failed), 2 bad configuration, 4 Redis unavailable."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command", required=True)
        add_ops_commands(sub, bus_module=False)
        cli.add_dumpschema_command(sub, bus_module=False)
        add_dashboard_command(sub, bus_module=False)
        add_outbox_commands(sub, bus_module=False)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["command"] == "outbox" and not options.get("db") and project.bus.config.bus.outbox.url is None:
            print(f"manage.py lightbus outbox relay: no outbox database: set settings.{OUTBOX_SETTING} to a "
                  f"database alias (or pass --db URL)", file=sys.stderr)
            raise SystemExit(2)
        long_running = options["command"] in ("dashboard", "outbox")
        setup_logging({"log_level": options.get("log_level") or ("INFO" if long_running else "WARNING")})
        code = cli.run_command(namespace(options))
        if code:
            raise SystemExit(code)
