"""lightbus_sync bus module that defines ``interop.lb_types`` itself (the same
definition as real Lightbus's): parameters are cast to the declared types."""

import lightbus_sync

import sync_lb_types_local  # noqa: F401  (defines interop.lb_types)
from interop_types import record

bus = lightbus_sync.create()


def on_typed(event_message, **kwargs):
    record("sync-local", event_message, kwargs)


bus.interop.lb_types.typed.listen(on_typed, listener_name="local_recorder")
