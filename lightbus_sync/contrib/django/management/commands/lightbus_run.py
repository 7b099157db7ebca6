"""``manage.py lightbus_run``: ``lightbus-sync run`` for the project's bus."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ..... import cli
from ...commands import check_config_flags, namespace, setup_logging


class Command(BaseCommand):
    help = (
        "Run the listeners of the project's bus (every installed app's bus module) until "
        "SIGTERM/SIGINT, with the options of lightbus-sync run. Exit status: 0 clean stop, "
        "1 the runner failed or the drain did not finish, 2 bad configuration."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_run_arguments(parser, bus_module=False)
        parser.add_argument("--log-format", choices=("text", "json"), default=None,
                            help="log as text or JSON (default: Django's LOGGING, else text)")

    def handle(self, *args: Any, **options: Any) -> None:
        check_config_flags(options)
        setup_logging(options)
        code = cli.command_run(namespace(options))
        if code:
            raise SystemExit(code)
