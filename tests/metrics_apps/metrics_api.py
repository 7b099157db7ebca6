"""The API of the metrics tests (imported by the test process and the runner process)."""

from lightbus_sync import Api, Event, Parameter


class MetricsOrdersApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int),))
    order_counted = Event(parameters=(Parameter("order_id", int),))

    class Meta:
        name = "metrics_test.orders"
