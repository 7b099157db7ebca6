"""Case ``fire_tracing``: what OpenTelemetry tracing costs ``fire()``, single thread.

Variants (same bus config, same event as the ``fire`` case):
- ``fire`` (baseline): no observer, which is also what runs when OpenTelemetry is not
  installed (``lightbus_sync.tracing`` is never imported then);
- ``fire + tracing (API, no SDK)``: ``lightbus_sync.tracing.instrument(bus)`` with only
  ``opentelemetry-api`` configured (its default, non-recording tracer): the cost of an
  instrumented service whose operators have not set up an SDK;
- ``fire + tracing (SDK)``: an SDK ``TracerProvider`` with a ``BatchSpanProcessor``
  whose exporter drops the spans: the cost of recording a PRODUCER span per fire;
- ``fire + tracing + propagation (SDK)``: the same, and the entry carries the
  ``traceparent`` field.

``hook_us`` is the observers' ``firing()`` hook alone, per call, without Redis: the
part of the difference that is not the machine's noise.

The traced variants are "not run" when OpenTelemetry (API or SDK) is not installed.
"""

from __future__ import annotations

import importlib.util
import time

from ..common import AUTH_STREAM, make_bus, unique
from ..framework import Case, Context, Metric, Target, Variant
from .fire import _measure

API_ONLY = "fire + tracing (API, no SDK)"


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _sdk_provider():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider


def _setup(ctx: Context) -> None:
    ctx.scratch["buses"] = buses = {"plain": make_bus(ctx, unique("bench-fire-trace"))}
    if _have("opentelemetry.trace"):
        from lightbus_sync.tracing import instrument

        buses["api"] = make_bus(ctx, unique("bench-fire-trace"))
        instrument(buses["api"])  # the global provider: never set in this process, so OpenTelemetry's no-op
        if _have("opentelemetry.sdk"):
            ctx.scratch["provider"] = provider = _sdk_provider()
            buses["sdk"] = make_bus(ctx, unique("bench-fire-trace"))
            instrument(buses["sdk"], tracer_provider=provider)
            buses["propagate"] = make_bus(ctx, unique("bench-fire-trace"))
            instrument(buses["propagate"], tracer_provider=provider, propagate=["bench_auth"])


def _teardown(ctx: Context) -> None:
    for bus in ctx.scratch.pop("buses").values():
        bus.close()
    provider = ctx.scratch.pop("provider", None)
    if provider is not None:
        provider.shutdown()


def _hook_cost(bus, n: int = 20_000) -> float:
    """Microseconds per call of the observers' ``firing()`` hook alone (no Redis)."""
    from lightbus_sync.observers import FireInfo

    observers = bus.observers
    started = time.perf_counter_ns()
    for _ in range(n):
        with observers.firing(FireInfo(AUTH_STREAM, "bench_auth", "user_created", ("id",), "fire")):
            pass
    return (time.perf_counter_ns() - started) / n / 1000


def _variant(key: str):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        bus = ctx.scratch["buses"][key]
        bus.transport_for("bench_auth").client.delete(AUTH_STREAM)
        result = _measure(lambda: bus.bench_auth.user_created.fire(username="adam", email="adam@example.com",
                                                                   is_admin=False), ctx.size(1_500, 10_000))
        if bus.observers.fire_wrapped:
            result["hook_us"] = _hook_cost(bus)
        return result

    return run


def build() -> Case:
    api = "" if _have("opentelemetry.trace") else "not run: opentelemetry-api is not installed"
    sdk = api or ("" if _have("opentelemetry.sdk") else "not run: opentelemetry-sdk is not installed")
    return Case(
        name="fire_tracing",
        title="fire() with and without OpenTelemetry tracing",
        description=__doc__,
        variants=[
            Variant("fire", _variant("plain"), baseline=True, description="no observer (OpenTelemetry absent)"),
            Variant(API_ONLY, _variant("api"), skip=api, description="instrument(bus), no SDK configured"),
            Variant("fire + tracing (SDK)", _variant("sdk"), skip=sdk,
                    description="SDK TracerProvider, BatchSpanProcessor, spans dropped"),
            Variant("fire + tracing + propagation (SDK)", _variant("propagate"), skip=sdk,
                    description="as above, traceparent written with the entry"),
        ],
        metrics=[
            Metric("rate", "rate", "events/s"),
            Metric("p50_us", "latency p50", "us", higher_is_better=False, fmt="{:,.1f}"),
            Metric("p99_us", "latency p99", "us", higher_is_better=False, fmt="{:,.1f}"),
            Metric("cpu_us", "client CPU per call", "us", higher_is_better=False, fmt="{:,.1f}"),
            Metric("hook_us", "firing() hook alone", "us/call", higher_is_better=False, ratio=False,
                   fmt="{:,.2f}"),
        ],
        targets=[Target(API_ONLY, "cpu_us", "<=", 1.05)],
        setup=_setup,
        teardown=_teardown,
        parameters={"calls_per_variant": {"quick": 1_500, "full": 10_000}},
    )
