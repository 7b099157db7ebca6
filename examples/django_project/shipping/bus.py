"""The shipping app listens to the orders app's event (in ``manage.py lightbus_run``).

With ``inbox="default"`` the handler runs in a transaction on that database, with the
event recorded in its inbox table: a redelivered event is skipped, so each order gets
one shipment."""

from lightbus_sync.contrib.django import listen

from .models import Shipment


@listen("shop.orders.order_placed", listener_name="create_shipment", inbox="default")
def create_shipment(order_id: int, item: str, quantity: int) -> None:
    Shipment.objects.create(order_id=order_id, item=item, quantity=quantity)
