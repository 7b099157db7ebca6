"""The bus configuration of a Django project: ``settings.LIGHTBUS_SYNC``.

``LIGHTBUS_SYNC`` holds what a config file holds, as a mapping, or the path of a config
file. It ranks as a file: the ``LIGHTBUS_*`` environment variables override it, as they
override a file (see docs/configuration.md). Without the setting, ``$LIGHTBUS_CONFIG``
names the file, as for ``create()``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from ...config import RootConfig, load_config
from ...errors import ConfigurationError

SETTING = "LIGHTBUS_SYNC"


def read_setting(settings: Any) -> Any:
    """``settings.LIGHTBUS_SYNC`` (None when absent); refuses anything but a mapping or a
    path, naming the setting."""
    value = getattr(settings, SETTING, None)
    if value is None or isinstance(value, (Mapping, str, os.PathLike)):
        return value
    raise ConfigurationError(
        f"settings.{SETTING} must be a mapping in the shape of a config file, or the path of "
        f"one; got {type(value).__name__} {value!r}"
    )


def project_config(settings: Any, environ: Optional[Mapping[str, str]] = None) -> RootConfig:
    """The project's validated configuration: the setting, under the environment.

    Raises ``ConfigurationError`` whose paths start with ``LIGHTBUS_SYNC`` (a mapping) or
    name the file (a path).
    """
    value = read_setting(settings)
    try:
        return load_config(value, environ=environ, label=SETTING)
    except ConfigurationError as exc:
        where = f"settings.{SETTING}" if not isinstance(value, (str, os.PathLike)) else (
            f"settings.{SETTING} ({os.fspath(value)!r})"
        )
        raise ConfigurationError(f"{where}: {exc}") from None


def default_service_name(settings: Any) -> str:
    """The consumer groups' service name when none is configured: the top-level package of
    the settings module (``mysite.settings`` -> ``mysite``), else ``django``."""
    module = getattr(settings, "SETTINGS_MODULE", None) or os.environ.get("DJANGO_SETTINGS_MODULE")
    return module.split(".")[0] if module else "django"
