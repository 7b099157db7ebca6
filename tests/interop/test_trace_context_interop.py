"""What a trace context carried with an entry does to a REAL Lightbus 1.1.2 consumer.

Propagation writes ``traceparent`` (and ``tracestate``) beside the entry's metadata.
Lightbus's ``ByFieldMessageDeserializer`` passes every field without a ``:`` prefix to
``EventMessage(**metadata)``, which takes no such argument: this test shows what the
worker then does, so the docs can say which APIs may turn propagation on.
"""

from __future__ import annotations

import time

import pytest

import lightbus_sync
from interop_harness import ProcessGroup, has_consumer, read_jsonl, wait_until, write_config
from interop_types import SAMPLES
from sync_defs import SyncTypesApi  # noqa: F401  (defines the API)

pytestmark = pytest.mark.timeout(300)

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_lightbus_consumer_stops_on_an_entry_carrying_a_trace_context(
    procs: ProcessGroup, redis_url, redis_client, tmp_path
):
    config = write_config(tmp_path / "lightbus.yaml", redis_url, service_name="lb-listener", process_name="lbw1")
    bus = lightbus_sync.create(config_file=config, service_name="sync-firer", process_name="sync-fire1")
    stream = "interop.sync_types.*:stream"
    try:
        bus.interop.sync_types.ping.fire()  # publishes the schema before the worker starts
        worker = procs.lightbus_worker("lightbus-listener", "lb_listener_bus", config, out="lightbus")
        wait_until(lambda: worker.alive() and has_consumer(redis_client, [stream], "lb-listener-recorder", "lbw1"),
                   30, "the Lightbus worker's consumer", procs.diagnostics)
        plain = bus.interop.sync_types.typed.fire(**SAMPLES[1])
        out = procs.out_path("lightbus")
        wait_until(lambda: len(read_jsonl(out)) >= 1, 20, "the plain event handled", procs.diagnostics)
        assert read_jsonl(out)[0]["id"] == plain.id

        # the same entry as propagation writes it: the fields, then the trace context
        _, fields = redis_client.xrange(stream, plain.stream_id, plain.stream_id)[0]
        traced = dict(fields, id=b"7f1d4a52-0000-4000-8000-000000000001", traceparent=TRACEPARENT,
                      tracestate=b"vendor=value")
        redis_client.xadd(stream, traced)
        code = worker.wait(30)
        log = worker.log()
        assert code != 0, "the Lightbus worker kept running"
        assert "unexpected keyword argument 'traceparent'" in log, worker.tail(60)
        time.sleep(0.2)
        assert len(read_jsonl(out)) == 1  # the traced event never reached the handler
        assert redis_client.xpending(stream, "lb-listener-recorder")["pending"] == 1  # left pending: it stops again
    finally:
        bus.close()
