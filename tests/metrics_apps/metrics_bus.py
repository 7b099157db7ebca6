"""The bus module ``lightbus-sync run --metrics-port`` runs in the metrics test: one
listener that succeeds (and fires a follow-up event), one that always fails and is
dead-lettered at once (max_deliveries=1)."""

import lightbus_sync

from metrics_api import MetricsOrdersApi  # noqa: F401  (defines the API)

bus = lightbus_sync.create(service_name="metrics_svc")


def count_order(order_id):
    bus.metrics_test.orders.order_counted.fire(order_id=order_id)


def reject_order(order_id):
    raise RuntimeError(f"order {order_id} rejected")


bus.metrics_test.orders.order_placed.listen(count_order, listener_name="count")
bus.metrics_test.orders.order_placed.listen(reject_order, listener_name="reject", max_deliveries=1)
