"""A bus module that fails to import: ``lightbus-sync run`` must exit 3 with the traceback."""

import lightbus_sync

bus = lightbus_sync.create(service_name="broken")


def _load_settings():
    raise RuntimeError("boom while importing broken_bus")


_load_settings()
