"""What tracing does to a REAL Lightbus 1.1.2 consumer (its own virtualenv).

- Traced without propagation (the default), entries are unchanged: the Lightbus worker
  handles them as before.
- With propagation on for an API, its entries carry ``traceparent`` beside the
  metadata. Lightbus's ``ByFieldMessageDeserializer`` passes every field without a
  ``:`` prefix to ``EventMessage(**metadata)``, which takes no such argument: the
  worker stops (``TypeError``), leaving the entry pending, so it stops again on every
  restart. Hence: propagation only for APIs that no Lightbus process consumes.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("opentelemetry.sdk", reason="needs opentelemetry-sdk (requirements-dev.txt)")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

import lightbus_sync  # noqa: E402
from interop_harness import ProcessGroup, has_consumer, read_jsonl, wait_until, write_config  # noqa: E402
from interop_types import SAMPLES  # noqa: E402
from lightbus_sync.tracing import instrument  # noqa: E402
from sync_defs import SyncTypesApi  # noqa: E402,F401  (defines the API)

pytestmark = pytest.mark.timeout(300)

STREAM = "interop.sync_types.*:stream"


def test_tracing_leaves_lightbus_consumers_alone_until_propagation_is_on(
    procs: ProcessGroup, redis_url, redis_client, tmp_path
):
    config = write_config(tmp_path / "lightbus.yaml", redis_url, service_name="lb-listener", process_name="lbw1")
    plain_bus = lightbus_sync.create(config_file=config, service_name="sync-firer", process_name="sync-fire1")
    propagating_bus = lightbus_sync.create(config_file=config, service_name="sync-firer", process_name="sync-fire2")
    provider = TracerProvider()
    try:
        instrument(plain_bus, tracer_provider=provider)
        instrument(propagating_bus, tracer_provider=provider, propagate=["interop.sync_types"])
        plain_bus.interop.sync_types.ping.fire()  # publishes the schema before the worker starts
        worker = procs.lightbus_worker("lightbus-listener", "lb_listener_bus", config, out="lightbus")
        wait_until(lambda: worker.alive() and has_consumer(redis_client, [STREAM], "lb-listener-recorder", "lbw1"),
                   30, "the Lightbus worker's consumer", procs.diagnostics)

        traced = plain_bus.interop.sync_types.typed.fire(**SAMPLES[1])
        out = procs.out_path("lightbus")
        wait_until(lambda: len(read_jsonl(out)) >= 1, 20, "the traced event handled", procs.diagnostics)
        assert read_jsonl(out)[0]["id"] == traced.id
        assert b"traceparent" not in redis_client.xrange(STREAM, traced.stream_id, traced.stream_id)[0][1]

        propagated = propagating_bus.interop.sync_types.typed.fire(**SAMPLES[1])
        fields = redis_client.xrange(STREAM, propagated.stream_id, propagated.stream_id)[0][1]
        assert fields[b"traceparent"].startswith(b"00-")
        code = worker.wait(30)
        assert code != 0, "the Lightbus worker kept running"
        assert "unexpected keyword argument 'traceparent'" in worker.log(), worker.tail(60)
        time.sleep(0.2)
        assert len(read_jsonl(out)) == 1  # the propagated event never reached the handler
        assert redis_client.xpending(STREAM, "lb-listener-recorder")["pending"] == 1  # left pending: it stops again
    finally:
        plain_bus.close()
        propagating_bus.close()
        provider.shutdown()
