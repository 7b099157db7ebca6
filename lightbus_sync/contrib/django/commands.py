"""What ``manage.py lightbus_run`` and ``manage.py lightbus`` share: the options of the
``lightbus-sync`` commands (defined once, in the CLI), run on the project's bus."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Mapping, Sequence

from ... import cli
from ...cli_common import apply_environment
from ... import config as config_module
from .project import project

RUN_COMMAND = "lightbus_run"
#: The management commands of this app (their configuration errors exit with status 2).
COMMANDS = (RUN_COMMAND, "lightbus")

#: The run options that choose the bus's configuration, and the variables they set.
CONFIG_FLAGS = (
    ("redis_url", "--redis-url", config_module.ENV_REDIS_URL),
    ("service_name", "--service-name", config_module.ENV_SERVICE_NAME),
    ("process_name", "--process-name", config_module.ENV_PROCESS_NAME),
    ("config", "--config", config_module.ENV_CONFIG),
)


class _NoExitParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def apply_early_run_flags(argv: Sequence[str]) -> None:
    """``manage.py lightbus_run --redis-url URL``: Django creates the bus (app ready) before
    the command parses its options, so the options that configure the bus are applied to
    the environment first, as ``lightbus-sync run`` applies them before importing the bus
    module. Anything unparsable is left for the command to report."""
    if len(argv) < 2 or argv[1] != RUN_COMMAND:
        return
    parser = _NoExitParser(add_help=False)
    cli.add_run_arguments(parser, bus_module=False)
    try:
        known, _ = parser.parse_known_args(list(argv[2:]))
    except ValueError:
        return
    apply_environment(known)


def check_config_flags(options: Mapping[str, Any]) -> None:
    """Refuse a configuring option that reached the command too late to apply (the bus
    exists already, made under another value): ``call_command('lightbus_run', redis_url=...)``."""
    from django.core.management import CommandError

    project.bus  # noqa: B018 - the bus, and the environment it was created under
    for dest, flag, env in CONFIG_FLAGS:
        value = options.get(dest)
        if value and project.created_with.get(env) != value:
            raise CommandError(
                f"{flag} applies only on manage.py's own command line (before Django sets up the "
                f"bus); here set ${env} in the environment, or the key in settings.LIGHTBUS_SYNC"
            )


def setup_logging(options: Mapping[str, Any]) -> None:
    """The CLI's logging when asked for (``--log-level``/``--log-format``) or when nothing
    configures the root logger; otherwise Django's ``LOGGING`` stays in charge."""
    asked = "log_level" in options or options.get("log_format")
    if asked or not logging.getLogger().handlers:
        level = options.get("log_level") or os.environ.get("LIGHTBUS_LOG_LEVEL", "INFO")
        cli._setup_logging(level, options.get("log_format") or "text")


def namespace(options: Mapping[str, Any]) -> argparse.Namespace:
    """The options as the CLI's commands take them, with the project's bus as theirs."""
    args = argparse.Namespace(**options)
    args.load_bus = lambda: (None, project.bus)
    return args
