"""The Django app: ``INSTALLED_APPS += ["lightbus_sync.contrib.django"]``."""

from __future__ import annotations

import sys

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

from ...errors import ConfigurationError


class LightbusSyncConfig(AppConfig):
    """On ready: validate ``settings.LIGHTBUS_SYNC``, create the project's bus, import every
    installed app's ``bus`` module."""

    name = "lightbus_sync.contrib.django"
    label = "lightbus_sync"
    verbose_name = "lightbus_sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .commands import COMMANDS, apply_early_run_flags
        from .project import project

        apply_early_run_flags(sys.argv)
        try:
            project.ready()
        except ConfigurationError as exc:
            if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
                # As lightbus-sync: one line and exit status 2 for a configuration error.
                print(f"manage.py {sys.argv[1]}: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
            raise ImproperlyConfigured(str(exc)) from None
