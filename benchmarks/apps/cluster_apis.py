"""APIs for the ``cluster_scale`` case, defined by name: each has the ``user_created``
event of ``bench_auth`` (same parameters, so the same entry size), and its own per-API
stream ``<name>.*:stream``, whose hash slot (so shard) follows from the name."""

from __future__ import annotations

from lightbus_sync import Api, Event, Parameter

_defined: dict[str, type] = {}


def define(names) -> list[str]:
    """Define (once) an API per name; returns the names."""
    names = list(names)
    for name in names:
        if name not in _defined:
            meta = type("Meta", (), {"name": name})
            event = Event(parameters=(
                Parameter("username", str), Parameter("email", str), Parameter("is_admin", bool, default=False),
            ))
            _defined[name] = type(f"BenchCluster{len(_defined)}Api", (Api,), {"user_created": event, "Meta": meta})
    return names
