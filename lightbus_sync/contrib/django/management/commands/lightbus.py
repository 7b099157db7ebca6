"""``manage.py lightbus status|inspect|dead-letters``: the operations commands of
``lightbus-sync`` for the project's bus."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from .....cli_ops import add_ops_commands
from ...commands import namespace, setup_logging


class Command(BaseCommand):
    help = (
        "lightbus-sync's operations commands on the project's bus: status, inspect, dead-letters. "
        "Exit status: 0 done, 1 a --check threshold exceeded or some ids not acted on, "
        "2 bad configuration or Redis unavailable."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command", required=True)
        add_ops_commands(sub, bus_module=False)

    def handle(self, *args: Any, **options: Any) -> None:
        setup_logging({"log_level": options.get("log_level") or "WARNING"})
        code = options["func"](namespace(options))
        if code:
            raise SystemExit(code)
