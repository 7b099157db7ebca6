"""OpenTelemetry tracing (lightbus_sync.tracing) with the SDK's in-memory exporter: one
trace from a fire in this process to the handler in a real ``lightbus-sync run``
process, retries and dead letters as span events, propagation opt-in per API, the
messaging attributes, fire_many, write failures, and nothing written or recorded when
OpenTelemetry is unconfigured or absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the tracing tests need opentelemetry-sdk (requirements-dev.txt)")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import lightbus_sync  # noqa: E402
from lightbus_sync.errors import BusUnavailable, MalformedEntry  # noqa: E402
from lightbus_sync.observers import FireInfo, Observer  # noqa: E402
from lightbus_sync.runner import Runner  # noqa: E402
from lightbus_sync.tracing import TracingObserver, instrument  # noqa: E402
from lightbus_sync.wire import decode_entry  # noqa: E402
from runner_apps.harness import REPO_ROOT, fast_config, make_bus, run_process, wait_until  # noqa: E402,F401
from tracing_apps.span_records import span_record  # noqa: E402
from tracing_apps.traced_api import TracedMailApi, TracedShopApi  # noqa: E402,F401

APPS = Path(__file__).resolve().parent / "tracing_apps"
SHOP = "traced.shop.*:stream"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def _spans(exporter, kind=None):
    records = [span_record(s) for s in exporter.get_finished_spans()]
    return [r for r in records if kind is None or r["kind"] == kind]


def test_one_trace_from_a_fire_to_the_handler_in_a_run_process(make_bus, run_process, provider, exporter,  # noqa: F811
                                                               redis_client, redis_url, tmp_path):
    bus = make_bus(service_name="shop-web")
    instrument(bus, propagate=["traced.shop"], tracer_provider=provider)
    flaky = bus.traced.shop.order_placed.fire(order_id=1, fail_times=1)  # fails once, then handled
    doomed = bus.traced.shop.order_placed.fire(order_id=2, fail_times=9)  # dead-lettered after 3 runs
    fields = redis_client.xrange(SHOP, flaky.stream_id, flaky.stream_id)[0][1]
    assert fields[b"traceparent"].startswith(b"00-")

    spans_out = tmp_path / "spans.json"
    runner = run_process("traced_bus", redis_url, config=fast_config(),
                         env={"PYTHONPATH": f"{APPS}:{REPO_ROOT}", "SPANS_OUT": str(spans_out)}).wait_ready()
    wait_until(lambda: redis_client.lrange("handled", 0, -1) == [b"1"]
               and redis_client.xlen("{" + SHOP + "}:dead") == 1, timeout=30, what="order 1 handled, 2 dead-lettered")
    assert runner.stop() == 0, runner.output()
    consumed = json.loads(spans_out.read_text())

    producers = {s["attributes"]["messaging.message.id"]: s for s in _spans(exporter, "PRODUCER")}
    fire = producers[flaky.id]
    assert fire["name"] == f"fire {SHOP}" and fire["status"] == "UNSET"
    assert fire["attributes"] == {
        "messaging.system": "lightbus", "messaging.destination.name": SHOP, "messaging.operation.type": "send",
        "messaging.operation.name": "fire", "messaging.message.id": flaky.id,
        "messaging.lightbus.api_name": "traced.shop", "messaging.lightbus.event_name": "order_placed",
    }
    assert fields[b"traceparent"].decode().rsplit("-", 1)[0] == f"00-{fire['trace_id']}-{fire['span_id']}"

    runs = sorted((s for s in consumed if s["attributes"].get("messaging.message.id") == flaky.id),
                  key=lambda s: s["attributes"]["messaging.lightbus.message.delivery_count"])
    assert len(runs) == 2
    for run in runs:  # both runs continue the producer's trace
        assert run["kind"] == "CONSUMER" and run["name"] == f"handle {SHOP}"
        assert (run["trace_id"], run["parent_id"]) == (fire["trace_id"], fire["span_id"])
        attributes = run["attributes"]
        assert attributes["messaging.system"] == "lightbus" and attributes["messaging.destination.name"] == SHOP
        assert attributes["messaging.operation.type"] == "process" and attributes["messaging.operation.name"] == "handle"
        assert attributes["messaging.consumer.group.name"] == "traced-billing"
        assert attributes["messaging.lightbus.listener"] == "billing"
        assert attributes["messaging.lightbus.entry_id"] == flaky.stream_id
    failed, handled = runs
    assert failed["status"] == "ERROR" and failed["attributes"]["error.type"] == "builtins.RuntimeError"
    assert [e["name"] for e in failed["events"]] == ["exception", "lightbus.retry_scheduled"]
    assert "run 1 of order 1 fails" in failed["events"][0]["attributes"]["exception.message"]
    assert 0 < failed["events"][1]["attributes"]["lightbus.retry.delay_s"] <= 0.2  # retry_backoff, jittered
    assert handled["status"] == "UNSET" and handled["events"] == []
    assert [r["attributes"]["messaging.lightbus.message.delivery_count"] for r in runs] == [1, 2]

    dead_runs = [s for s in consumed if s["attributes"].get("messaging.message.id") == doomed.id]
    assert len(dead_runs) == 3 and {s["trace_id"] for s in dead_runs} == {producers[doomed.id]["trace_id"]}
    last = max(dead_runs, key=lambda s: s["attributes"]["messaging.lightbus.message.delivery_count"])
    assert [e["name"] for e in last["events"]] == ["exception", "lightbus.dead_lettered"]
    assert last["events"][1]["attributes"]["lightbus.dead_letter.reason"] == "max deliveries reached"


def test_without_propagation_the_consumer_span_stands_alone(make_bus, provider, exporter, redis_client):  # noqa: F811
    bus = make_bus()
    instrument(bus, propagate=["traced.mail"], tracer_provider=provider)  # another API opted in
    seen = []
    bus.traced.shop.order_placed.listen(lambda order_id, fail_times: seen.append(order_id), listener_name="b",
                                        since="0")
    message = bus.traced.shop.order_placed.fire(order_id=5)
    fields = redis_client.xrange(SHOP, message.stream_id, message.stream_id)[0][1]
    assert b"traceparent" not in fields and b"tracestate" not in fields
    with Runner(bus, threads=1) as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: seen == [5])
    [fire] = _spans(exporter, "PRODUCER")
    wait_until(lambda: _spans(exporter, "CONSUMER"))
    [handle] = _spans(exporter, "CONSUMER")
    assert handle["parent_id"] is None and handle["trace_id"] != fire["trace_id"]
    assert handle["attributes"]["messaging.message.id"] == message.id


def test_fire_many_is_one_span_and_every_entry_carries_its_context(make_bus, provider, exporter, redis_client):  # noqa: F811
    bus = make_bus()
    instrument(bus, propagate=["traced.shop"], tracer_provider=provider)
    messages = bus.traced.shop.order_placed.fire_many([{"order_id": i} for i in range(3)])
    [span] = _spans(exporter)
    assert span["name"] == f"fire_many {SHOP}" and span["kind"] == "PRODUCER"
    assert span["attributes"]["messaging.batch.message_count"] == 3
    assert span["attributes"]["messaging.operation.name"] == "fire_many"
    assert "messaging.message.id" not in span["attributes"]
    parents = {redis_client.xrange(SHOP, m.stream_id, m.stream_id)[0][1][b"traceparent"].decode().rsplit("-", 1)[0]
               for m in messages}
    assert parents == {f"00-{span['trace_id']}-{span['span_id']}"}


def test_the_producer_span_records_a_failed_write(provider, exporter):
    bus = lightbus_sync.create(redis_url="redis://127.0.0.1:1/0", service_name="svc",
                               config={"apis": {"default": {"event_fire_timeout": 0.3}}})
    try:
        instrument(bus, propagate=["traced.shop"], tracer_provider=provider)
        with pytest.raises(BusUnavailable):
            bus.traced.shop.order_placed.fire(order_id=1)
    finally:
        bus.close()
    [span] = _spans(exporter)
    assert span["status"] == "ERROR" and span["events"][0]["name"] == "exception"
    assert span["attributes"]["error.type"] == "lightbus_sync.errors.BusUnavailable"


def test_an_entry_dead_lettered_before_its_handler_gets_a_span(make_bus, provider, exporter, redis_client):  # noqa: F811
    bus = make_bus()
    instrument(bus, tracer_provider=provider)
    bus.traced.shop.order_placed.listen(lambda order_id, fail_times: None, listener_name="b", since="0")
    redis_client.xadd(SHOP, {"id": "x", "api_name": "traced.shop", "event_name": "order_placed", "version": "1",
                             ":order_id": "not json"})
    with Runner(bus, threads=1) as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: redis_client.xlen("{" + SHOP + "}:dead") == 1)
    wait_until(lambda: _spans(exporter, "CONSUMER"))
    [span] = _spans(exporter, "CONSUMER")
    assert span["status"] == "ERROR" and span["events"][0]["name"] == "lightbus.dead_lettered"
    assert span["events"][0]["attributes"]["lightbus.dead_letter.reason"] == "malformed"


def test_trace_fields_are_read_and_other_unknown_fields_still_refused():
    base = {b"id": b"e1", b"api_name": b"a", b"event_name": b"e", b"version": b"1"}
    raw = decode_entry({**base, b"traceparent": b"00-ab-cd-01", b"tracestate": b"k=v"})
    assert raw.trace_context == {"traceparent": "00-ab-cd-01", "tracestate": "k=v"}
    assert decode_entry(base).trace_context is None
    with pytest.raises(MalformedEntry, match="unknown metadata field 'baggage'"):
        decode_entry({**base, b"baggage": b"k=v"})


def test_propagate_must_name_apis():
    with pytest.raises(TypeError, match="propagate: expected a list of API names, got the string 'shop'"):
        TracingObserver(propagate="shop")
    with pytest.raises(TypeError, match="propagate: expected API names"):
        TracingObserver(propagate=[""])


def test_an_observer_failing_in_firing_never_breaks_a_fire(make_bus, redis_client, caplog):  # noqa: F811
    class Broken(Observer):
        def firing(self, fire: FireInfo):
            raise RuntimeError("broken observer")

    bus = make_bus()
    bus.add_observer(Broken())
    message = bus.traced.shop.order_placed.fire(order_id=1)
    assert redis_client.xlen(SHOP) == 1 and message.stream_id
    assert "failed in firing()" in caplog.text


def _python(code: str, redis_url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), str(REPO_ROOT)]), TEST_REDIS_URL=redis_url)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=60)


def test_unconfigured_opentelemetry_records_and_writes_nothing(redis_url, redis_client):
    result = _python("""
        import os, lightbus_sync
        from opentelemetry import trace
        from lightbus_sync.tracing import instrument
        from traced_api import TracedShopApi
        bus = lightbus_sync.create(redis_url=os.environ["TEST_REDIS_URL"], service_name="svc")
        instrument(bus, propagate=["traced.shop"])  # OpenTelemetry's global provider: never configured
        bus.traced.shop.order_placed.fire(order_id=1)
        print(type(trace.get_tracer_provider()).__name__)
    """, redis_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ProxyTracerProvider"
    [(_, fields)] = redis_client.xrange(SHOP)
    assert b"traceparent" not in fields


def test_without_opentelemetry_installed_fire_works_and_instrument_says_what_to_install(redis_url, redis_client):
    result = _python("""
        import os, sys
        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
        sys.meta_path.insert(0, Absent())
        import lightbus_sync
        from traced_api import TracedShopApi
        bus = lightbus_sync.create(redis_url=os.environ["TEST_REDIS_URL"], service_name="svc")
        bus.traced.shop.order_placed.fire(order_id=1)
        assert not any(m.startswith("opentelemetry") for m in sys.modules), "imported"
        from lightbus_sync.tracing import instrument
        try:
            instrument(bus)
        except lightbus_sync.LightbusError as exc:
            print(exc)
    """, redis_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tracing needs OpenTelemetry: pip install 'lightbus_sync[otel]'"
    assert redis_client.xlen(SHOP) == 1


def test_a_failed_run_without_retry_or_dead_letter_still_ends_its_span(make_bus, provider, exporter):  # noqa: F811
    bus = make_bus()
    instrument(bus, tracer_provider=provider)
    runs = []

    def fails(order_id, fail_times):
        runs.append(order_id)
        raise ValueError("logged and acked")

    bus.traced.shop.order_placed.listen(fails, listener_name="b", since="0", on_error="ack_and_log")
    bus.traced.shop.order_placed.fire(order_id=1)
    with Runner(bus, threads=1) as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: runs == [1])
        time.sleep(0.05)
        assert _spans(exporter, "CONSUMER") == []  # open until a retry, a dead letter or the stop
        before_stop = time.time_ns()
    wait_until(lambda: _spans(exporter, "CONSUMER"), what="the span ended when the runner stopped")
    [span] = _spans(exporter, "CONSUMER")
    assert span["status"] == "ERROR" and [e["name"] for e in span["events"]] == ["exception"]
    assert span["end"] < before_stop  # ended at the time the handler raised, not at the stop


def test_observers_add_trace_fields_only(make_bus, redis_client, caplog):  # noqa: F811
    class Adds(Observer):
        def __init__(self, fields):
            self.fields = fields

        def firing(self, fire: FireInfo):
            import contextlib

            return contextlib.nullcontext(self.fields)

    bus = make_bus()
    bus.add_observer(Adds({"traceparent": "00-aa-bb-01"}))
    bus.add_observer(Adds({"tracestate": "k=v", "x-tenant": "t1"}))
    message = bus.traced.shop.order_placed.fire(order_id=1)
    fields = redis_client.xrange(SHOP, message.stream_id, message.stream_id)[0][1]
    assert fields[b"traceparent"] == b"00-aa-bb-01" and fields[b"tracestate"] == b"k=v"
    assert b"x-tenant" not in fields
    assert "added the field(s) x-tenant to an entry" in caplog.text
