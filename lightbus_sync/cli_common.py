"""What both CLI modules (cli.py, cli_ops.py) share: exit codes and loading the bus."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any, Optional

from . import config as config_module
from .errors import LightbusError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_IMPORT = 3


def apply_environment(args: argparse.Namespace) -> None:
    """Flags become environment variables before the bus module runs ``create()``."""
    for flag, env in (
        ("redis_url", config_module.ENV_REDIS_URL),
        ("service_name", config_module.ENV_SERVICE_NAME),
        ("process_name", config_module.ENV_PROCESS_NAME),
        ("config", config_module.ENV_CONFIG),
    ):
        value = getattr(args, flag, None)
        if value:
            os.environ[env] = value


class BusModuleImportFailed(Exception):
    """The bus module raised on import; its traceback has been printed."""


def load_command_bus(args: argparse.Namespace, service_name: Optional[str] = None) -> tuple[Any, bool]:
    """The bus a command works on: the bus module's if one is named (``--bus`` or
    ``$LIGHTBUS_MODULE``), else one made from the configuration. Returns (bus,
    from_module). A bus module that fails to import has its traceback printed and raises
    BusModuleImportFailed; configuration errors raise LightbusError."""
    from .bus import create
    from .bus_module import import_bus_module

    apply_environment(args)
    name = getattr(args, "bus", None) or os.environ.get(config_module.ENV_MODULE)
    if not name:
        return create(service_name=service_name), False
    try:
        _, bus = import_bus_module(name)
    except LightbusError:
        raise
    except Exception:
        print(f"lightbus-sync: the bus module {name!r} failed to import:", file=sys.stderr)
        traceback.print_exc()
        raise BusModuleImportFailed(name) from None
    return bus, True
