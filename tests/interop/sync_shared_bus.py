"""lightbus_sync bus module sharing the consumer group ``<service>-worker`` with a real
Lightbus worker (lb_shared_bus.py). ``hang_in == "sync"`` makes the handler hang."""

import time

import lightbus_sync

import sync_defs  # noqa: F401  (defines interop.shared)
from interop_types import record

bus = lightbus_sync.create()


def on_work(event_message, n: int, hang_in: str):
    if hang_in == "sync":
        record("sync", event_message, {"n": n, "hang_in": hang_in}, state="hanging")
        time.sleep(3600)
    record("sync", event_message, {"n": n, "hang_in": hang_in})


bus.interop.shared.work.listen(on_work, listener_name="worker")
