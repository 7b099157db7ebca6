"""A slow listener with an inbox, on a thread of its own (``concurrency=1``): its handler
holds its database connection for a while, so killing the database's connections
catches it in flight, while the shared worker threads sit idle between events."""

import time

from lightbus_sync.contrib.django import listen

from .models import Audit


@listen("shop.orders.order_placed", listener_name="slow_audit", inbox="default",
        retry_backoff=(0.1, 0.5), max_deliveries=20, concurrency=1)
def slow_audit(order_id: int, item: str, quantity: int) -> None:
    Audit.objects.create(order_id=order_id)
    time.sleep(0.15)  # in flight, inside the transaction
