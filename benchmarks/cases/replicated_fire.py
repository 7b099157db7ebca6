"""Case ``replicated_fire``: what ``min_replicas`` costs. One ``fire()`` at a time, single
thread, through a ``redis+sentinel://`` URL to a primary with two replicas (and three
sentinels), all on this machine (the case starts them: ``SentinelDeployment``).

Variants, on the same deployment and interleaved:
- ``fire`` (baseline): ``min_replicas: 0``, the default: returns once the primary has
  the entry;
- ``fire (min_replicas 1)``: returns once one replica has it too (``XADD`` and
  ``WAIT 1`` in one pipeline): one round trip from the primary to a replica more;
- ``fire (min_replicas 2)``: both replicas;
- ``fire_many x100`` and ``fire_many x100 (min_replicas 1)``: one ``WAIT`` per
  pipeline of 100 entries, so its cost is shared (their ratio is in the comparison
  table under the main one).

On loopback a replica round trip is tens of microseconds; across machines it is the
network's round trip, which the ratio then shows directly.
"""

from __future__ import annotations

import lightbus_sync

from ..common import BUS_CONFIG, deep_merge, unique
from ..framework import Case, Comparison, Context, Metric, Variant
from .fire import _measure

STREAM = "bench_auth.*:stream"
BATCH = 100


def _setup(ctx: Context) -> None:
    from lightbus_sync.testing.redis_sentinel import SentinelDeployment

    deployment = SentinelDeployment()
    deployment.start()
    ctx.scratch["deployment"] = deployment
    for key, replicas in (("plain", 0), ("one", 1), ("two", 2)):
        config = {"apis": {"default": {"event_transport": {"redis": {
            "min_replicas": replicas, "min_replicas_timeout": 5}}}}}
        name = unique("bench-replicated")
        ctx.scratch[key] = lightbus_sync.create(redis_url=deployment.url, service_name=name,
                                                process_name=f"{name}-proc", config=deep_merge(BUS_CONFIG, config))
    ctx.scratch.setdefault("extra", {})["replicated_fire"] = {
        "redis_server": ".".join(map(str, deployment.primary_server.version)), "replicas": 2, "sentinels": 3,
    }


def _teardown(ctx: Context) -> None:
    for key in ("plain", "one", "two"):
        bus = ctx.scratch.pop(key, None)
        if bus is not None:
            bus.close()
    deployment = ctx.scratch.pop("deployment", None)
    if deployment is not None:
        deployment.cleanup()


def _trim(ctx: Context) -> None:
    with ctx.scratch["deployment"].client() as client:
        client.delete(STREAM)


def _fire(bus_key: str):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        _trim(ctx)
        event = ctx.scratch[bus_key].bench_auth.user_created
        return _measure(lambda: event.fire(username="adam", email="adam@example.com", is_admin=False),
                        ctx.size(1_000, 5_000))

    return run


def _fire_many(bus_key: str):
    def run(ctx: Context, rep: int) -> dict[str, float]:
        _trim(ctx)
        event = ctx.scratch[bus_key].bench_auth.user_created
        calls = [{"username": "adam", "email": "adam@example.com", "is_admin": False}] * BATCH
        result = _measure(lambda: event.fire_many(calls), ctx.size(30, 150))
        result["rate"] *= BATCH  # events/s
        return result

    return run


def build() -> Case:
    return Case(
        name="replicated_fire",
        title="fire() with min_replicas vs plain fire() (Sentinel: primary + 2 replicas)",
        description=__doc__,
        variants=[
            Variant("fire", _fire("plain"), baseline=True, description="min_replicas: 0 (the default)"),
            Variant("fire (min_replicas 1)", _fire("one"), description="XADD + WAIT 1 in one pipeline"),
            Variant("fire (min_replicas 2)", _fire("two"), description="XADD + WAIT 2 in one pipeline"),
            Variant("fire_many x100", _fire_many("plain"), description="100 XADDs in one pipeline"),
            Variant("fire_many x100 (min_replicas 1)", _fire_many("one"),
                    description="100 XADDs + one WAIT 1 in one pipeline"),
        ],
        metrics=[
            Metric("rate", "rate", "events/s"),
            Metric("p50_us", "latency p50 (per call)", "us", higher_is_better=False, fmt="{:,.1f}"),
            Metric("p99_us", "latency p99 (per call)", "us", higher_is_better=False, fmt="{:,.1f}"),
            Metric("cpu_us", "client CPU per call", "us", higher_is_better=False, fmt="{:,.1f}"),
        ],
        comparisons=[Comparison("fire_many x100 (min_replicas 1)", "fire_many x100", ("rate", "p50_us"))],
        setup=_setup,
        teardown=_teardown,
        parameters={"fire_calls": {"quick": 1_000, "full": 5_000}, "fire_many_calls": {"quick": 30, "full": 150},
                    "batch": BATCH},
    )
