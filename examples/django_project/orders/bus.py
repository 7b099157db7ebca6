"""The orders app's API: imported at start-up by the lightbus_sync app (autodiscovery)."""

from lightbus_sync import Api, Event, Parameter


class OrdersApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("item", str),
                                     Parameter("quantity", int)))

    class Meta:
        name = "shop.orders"
