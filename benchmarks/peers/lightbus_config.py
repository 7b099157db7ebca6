"""The Lightbus 1.1.2 configuration the peer runs with (stdlib only: the benchmark
process writes it for ``lightbus run --config``, and the peer's own processes pass it
to ``lightbus.create(config=...)``).

Everything on the benchmark's private Redis. ``batch_size: 100`` as lightbus_sync's
cases use (``benchmarks/apps/definitions.py``; Lightbus's default is 10); validation
of outgoing and incoming events on (Lightbus's default, as lightbus_sync's);
Lightbus's internal state/metrics plugins off (they fire events of their own).
"""

from __future__ import annotations


def lightbus_config(redis_url: str, batch_size: int = 100) -> dict:
    redis = {"url": redis_url}
    return {
        "bus": {
            "log_level": "warning",
            "schema": {"transport": {"redis": dict(redis)}},
        },
        "apis": {
            "default": {
                "validate": {"outgoing": True, "incoming": True},
                "event_transport": {"redis": {**redis, "batch_size": batch_size, "max_stream_length": 100_000}},
                "rpc_transport": {"redis": dict(redis)},
                "result_transport": {"redis": dict(redis)},
            }
        },
        "plugins": {"internal_state": {"enabled": False}, "internal_metrics": {"enabled": False}},
    }
