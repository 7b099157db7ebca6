"""The APIs of the tracing tests."""

from lightbus_sync import Api, Event, Parameter


class TracedShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("fail_times", int, default=0)))

    class Meta:
        name = "traced.shop"


class TracedMailApi(Api):
    mail_sent = Event(parameters=(Parameter("to", str),))

    class Meta:
        name = "traced.mail"
