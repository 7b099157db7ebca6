"""The shipping app listens to the orders app's event (in ``manage.py lightbus_run``)."""

from lightbus_sync.contrib.django import listen

from .models import Shipment


@listen("shop.orders.order_placed", listener_name="create_shipment")
def create_shipment(order_id: int, item: str, quantity: int) -> None:
    Shipment.objects.create(order_id=order_id, item=item, quantity=quantity)
