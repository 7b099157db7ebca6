"""Case ``fire``: one ``bus.bench_auth.user_created.fire(...)`` at a time, single
thread, against a bare redis-py ``XADD`` of the identical fields.

Variants:
- ``bare XADD`` (baseline): ``client.xadd(stream, fields, maxlen=100000,
  approximate=True)``, the fields encoded once by ``lightbus_sync.wire.encode_event``;
- ``fire``: the full user path with the default config,
  ``bus.bench_auth.user_created.fire(username=..., email=..., is_admin=...)``:
  attribute look-up, type checks (always made), the library's own JSON-schema check
  (``validate.outgoing``, on by default, when a schema is known), uuid1, encoding,
  XADD, EventMessage; ``validate_us`` is that schema check alone, per call;
- ``fire (validate: false)``: config ``validate: false``: the type checks only;
- ``fire (validate: false) + own schema check (fastjsonschema|jsonschema)``: the
  cost of an equivalent JSON-schema validation done by the caller, with a schema
  written for the event (``USER_CREATED_SCHEMA``), before each fire (skipped when the
  package is missing); ``validate_us`` is that check alone, per call.

``cpu_us`` is this process's CPU time per call: steadier than the rate when the
machine is shared, and it shows the client-side cost that the Redis round trip hides.
"""

from __future__ import annotations

import time

from ..apps.definitions import KWARGS, USER_CREATED_SCHEMA
from ..common import AUTH_STREAM, MAXLEN, auth_fields, bare_client, make_bus, unique
from ..framework import Case, Context, Metric, Target, Variant, percentile

WARMUP = 200


def _measure(call, n: int) -> dict[str, float]:
    for _ in range(WARMUP):
        call()
    latencies = [0] * n
    clock = time.perf_counter_ns
    cpu0 = time.process_time()
    started = clock()
    for i in range(n):
        t0 = clock()
        call()
        latencies[i] = clock() - t0
    elapsed = (clock() - started) / 1e9
    cpu = time.process_time() - cpu0
    latencies.sort()
    return {
        "rate": n / elapsed,
        "p50_us": percentile(latencies, 50) / 1000,
        "p99_us": percentile(latencies, 99) / 1000,
        "cpu_us": cpu / n * 1e6,
    }


def _validator_cost(validate, n: int = 5000) -> float:
    kwargs = dict(KWARGS)
    started = time.perf_counter_ns()
    for _ in range(n):
        validate(kwargs)
    return (time.perf_counter_ns() - started) / n / 1000


def _setup(ctx: Context) -> None:
    ctx.scratch["client"] = bare_client(ctx)
    ctx.scratch["bus"] = make_bus(ctx, unique("bench-fire"))
    ctx.scratch["bus_novalidate"] = make_bus(ctx, unique("bench-fire"), {"apis": {"default": {"validate": False}}})
    ctx.scratch["fields"] = auth_fields()


def _teardown(ctx: Context) -> None:
    ctx.scratch.pop("bus").close()
    ctx.scratch.pop("bus_novalidate").close()
    client = ctx.scratch.pop("client")
    client.delete(AUTH_STREAM)
    client.close()


def _n(ctx: Context) -> int:
    return ctx.size(1_500, 10_000)


def bare(ctx: Context, rep: int) -> dict[str, float]:
    client, fields = ctx.scratch["client"], ctx.scratch["fields"]
    client.delete(AUTH_STREAM)
    return _measure(lambda: client.xadd(AUTH_STREAM, fields, maxlen=MAXLEN, approximate=True), _n(ctx))


def _library_validator(bus):
    """The compiled validator fire() uses (None if this version has none)."""
    schemas = getattr(bus, "schemas", None)
    if schemas is None or not hasattr(schemas, "validator"):
        return None
    return schemas.validator("bench_auth", "user_created")


def _fire_variant(bus_key: str):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        bus = ctx.scratch[bus_key]
        ctx.scratch["client"].delete(AUTH_STREAM)
        result = _measure(lambda: bus.bench_auth.user_created.fire(username="adam", email="adam@example.com",
                                                                   is_admin=False), _n(ctx))
        validator = _library_validator(bus) if bus_key == "bus" else None
        if validator is not None:
            result["validate_us"] = _validator_cost(validator)
        return result

    return run


def _schema_variant(make_validator):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        bus = ctx.scratch["bus_novalidate"]
        validate = make_validator()
        ctx.scratch["client"].delete(AUTH_STREAM)

        def call() -> None:
            kwargs = {"username": "adam", "email": "adam@example.com", "is_admin": False}
            validate(kwargs)
            bus.bench_auth.user_created.fire(**kwargs)

        result = _measure(call, _n(ctx))
        result["validate_us"] = _validator_cost(validate)
        return result

    return run


def _fastjsonschema():
    import fastjsonschema

    return fastjsonschema.compile(USER_CREATED_SCHEMA)


def _jsonschema():
    import jsonschema

    cls = jsonschema.validators.validator_for(USER_CREATED_SCHEMA)
    return cls(USER_CREATED_SCHEMA).validate


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def build() -> Case:
    variants = [
        Variant("bare XADD", bare, baseline=True, description="redis-py xadd of pre-encoded fields"),
        Variant("fire", _fire_variant("bus"),
                description="bus.bench_auth.user_created.fire(...), default config (validate on)"),
        Variant("fire (validate: false)", _fire_variant("bus_novalidate"),
                description="config validate: false; the type checks only"),
    ]
    if _available("fastjsonschema"):
        variants.append(Variant("fire (validate: false) + own fastjsonschema", _schema_variant(_fastjsonschema),
                                description="fire + schema validation: fastjsonschema.compile(schema)(kwargs)"))
    if _available("jsonschema"):
        variants.append(Variant("fire (validate: false) + own jsonschema", _schema_variant(_jsonschema),
                                description="fire + schema validation: jsonschema validator.validate(kwargs)"))
    return Case(
        name="fire",
        title="fire(): sequential single-thread XADD latency and rate",
        description=__doc__,
        variants=variants,
        metrics=[
            Metric("rate", "rate", "events/s"),
            Metric("p50_us", "latency p50", "us", higher_is_better=False, fmt="{:,.1f}"),
            Metric("p99_us", "latency p99", "us", higher_is_better=False, fmt="{:,.1f}"),
            Metric("cpu_us", "client CPU per call", "us", higher_is_better=False, fmt="{:,.1f}"),
            Metric("validate_us", "schema check alone", "us/call", higher_is_better=False, ratio=False,
                   fmt="{:,.2f}"),
        ],
        targets=[Target("fire", "rate", ">=", 0.9)],
        setup=_setup,
        teardown=_teardown,
        parameters={"calls_per_variant": {"quick": 1_500, "full": 10_000}, "warmup_calls": WARMUP},
    )
