"""The shop's bus module for `lightbus-sync run` / `outbox relay` in tests: one listener
recording what it handles into the file named by $SHOP_HANDLED."""

import json
import os

import lightbus_sync
from shop import ShopApi  # noqa: F401  (defines the API)

bus = lightbus_sync.create(service_name="shop")


def record(event: lightbus_sync.EventMessage, **kwargs):
    path = os.environ.get("SHOP_HANDLED")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"id": event.id, "order_id": event.kwargs["order_id"]}) + "\n")


bus.shop.order_placed.listen(record, listener_name="recorder")
