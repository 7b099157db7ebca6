"""The bus module of the ops CLI tests (``--bus ops_cli_bus``)."""

import lightbus_sync
from lightbus_sync import Api, Event, Parameter


class OpsCliShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("customer", str)))
    order_cancelled = Event(parameters=(Parameter("order_id", int),))

    class Meta:
        name = "opscli.shop"


bus = lightbus_sync.create(service_name="opscli", process_name="opscli-1")


def _record(order_id: int) -> None:
    pass


bus.opscli.shop.order_cancelled.listen(_record, listener_name="recorder")
