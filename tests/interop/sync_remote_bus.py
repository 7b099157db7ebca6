"""lightbus_sync bus module that does NOT define ``interop.lb_types``: its listener is
built from the schema real Lightbus published (loaded when ``listen()`` runs), and
incoming events are validated against that schema.

Run: lightbus-sync run --bus sync_remote_bus --config lightbus.yaml (cwd: this directory).
"""

import lightbus_sync

from interop_types import record

bus = lightbus_sync.create()


def on_typed(event_message, **kwargs):
    record("sync-remote", event_message, kwargs)


bus.interop.lb_types.typed.listen(on_typed, listener_name="remote_recorder")
