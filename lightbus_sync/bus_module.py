"""Finding a service's bus: import its bus module and take the ``Bus`` it defines."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Optional

from .bus import Bus
from .config import ENV_MODULE
from .errors import ConfigurationError

DEFAULT_BUS_MODULE = "bus"


class BusModuleNotFound(ConfigurationError, ModuleNotFoundError):
    """The bus module (or a package it is in) does not exist: a wrong ``--bus`` or
    ``$LIGHTBUS_MODULE``, said in one line. An import error *inside* the module (a
    missing dependency, a typo) is not this: it propagates with its traceback. Still a
    ``ModuleNotFoundError``, for code that catches import errors."""


def import_bus_module(name: Optional[str] = None) -> tuple[ModuleType, Bus]:
    """Import ``name`` (default ``$LIGHTBUS_MODULE``, else ``bus``) and return it with its
    bus: the module's ``bus`` attribute, or its only ``Bus`` instance.

    The current directory is importable, as ``python -m`` would make it. Raises
    ``BusModuleNotFound`` when the module itself does not exist; other import errors
    propagate unchanged (the caller shows the traceback).
    """
    name = name or os.environ.get(ENV_MODULE) or DEFAULT_BUS_MODULE
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        parts = name.split(".")
        if exc.name not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
            raise  # the module exists, and something it imports does not
        raise BusModuleNotFound(
            f"no bus module named {name!r} (no module {exc.name!r} on the path, which starts with the "
            f"current directory {os.getcwd()}); give the module with --bus or $LIGHTBUS_MODULE"
        ) from None
    candidate = getattr(module, "bus", None)
    if isinstance(candidate, Bus):
        return module, candidate
    buses = [value for value in vars(module).values() if isinstance(value, Bus)]
    if len(buses) == 1:
        return module, buses[0]
    if not buses:
        raise ConfigurationError(
            f"bus module {name!r} defines no bus: add `bus = lightbus_sync.create()` to it"
        )
    raise ConfigurationError(f"bus module {name!r} defines several buses; name the one to run `bus`")
