"""Bus module of the tracing tests' ``lightbus-sync run`` process: OpenTelemetry's SDK
with its in-memory exporter as the global provider, the bus instrumented, and every
finished span written as JSON to ``$SPANS_OUT`` when the runner stops.

Listener ``billing`` fails the first ``fail_times`` runs of an order (runs counted in
the test's Redis, ``TEST_REDIS_URL``), then records the order in the list ``handled``.
"""

import json
import os

import redis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lightbus_sync
from lightbus_sync.tracing import instrument
from traced_api import TracedShopApi  # noqa: F401  (defines the API)
from span_records import span_record

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

bus = lightbus_sync.create(service_name="traced")
instrument(bus)
record = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])


def bill(order_id, fail_times):
    run = record.incr(f"runs:{order_id}")
    if run <= fail_times:
        raise RuntimeError(f"run {run} of order {order_id} fails")
    record.rpush("handled", str(order_id))


def before_server_start():
    bus.traced.shop.order_placed.listen(bill, listener_name="billing", since="0", max_deliveries=3,
                                        retry_backoff=(0.1, 0.2))


@bus.on_stop
def write_spans():
    with open(os.environ["SPANS_OUT"], "w") as out:
        json.dump([span_record(span) for span in exporter.get_finished_spans()], out)
