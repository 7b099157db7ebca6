"""Real Lightbus bus module sharing a consumer group with a lightbus_sync runner:
listener ``worker`` on ``interop.shared.work`` (defined by lightbus_sync), in the
service named by the shared YAML. ``hang_in == "lightbus"`` makes the handler hang
(so the entry stays pending until another consumer reclaims it).
"""

import time

import lightbus

from interop_types import record

bus = lightbus.create()


def on_work(event_message, n: int, hang_in: str):
    if hang_in == "lightbus":
        record("lightbus", event_message, {"n": n, "hang_in": hang_in}, state="hanging")
        time.sleep(3600)
    record("lightbus", event_message, {"n": n, "hang_in": hang_in})


@bus.client.on_start()
def setup(client):
    bus.interop.shared.work.listen(on_work, listener_name="worker")
