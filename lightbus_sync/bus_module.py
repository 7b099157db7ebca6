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


def import_bus_module(name: Optional[str] = None) -> tuple[ModuleType, Bus]:
    """Import ``name`` (default ``$LIGHTBUS_MODULE``, else ``bus``) and return it with its
    bus: the module's ``bus`` attribute, or its only ``Bus`` instance.

    The current directory is importable, as ``python -m`` would make it. Import errors
    propagate unchanged (the caller shows the traceback).
    """
    name = name or os.environ.get(ENV_MODULE) or DEFAULT_BUS_MODULE
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(name)
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
