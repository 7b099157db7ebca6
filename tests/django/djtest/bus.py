"""A test app's bus module: it listens to an event of an API another app defines (the
shop's orders), declared with @listen, and registers a second listener directly."""

import threading

from lightbus_sync.contrib.django import bus, listen

received: list[dict] = []
received_lock = threading.Lock()


@listen("shop.orders.order_placed", listener_name="record_orders")
def record_orders(order_id: int, item: str, quantity: int) -> None:
    with received_lock:
        received.append({"order_id": order_id, "item": item, "quantity": quantity})


def direct_handler(**kwargs) -> None:
    pass


# The orders app comes before this one in INSTALLED_APPS, so its API is defined by now.
bus.shop.orders.order_placed.listen(direct_handler, listener_name="direct")
