"""The API the dashboard tests fire and their ``lightbus-sync run`` process listens to."""

from lightbus_sync import Api, Event, Parameter


class DashShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("note", str)))

    class Meta:
        name = "dash.shop"


class DashMailApi(Api):
    mail_sent = Event(parameters=(Parameter("to", str),))

    class Meta:
        name = "dash.mail"
