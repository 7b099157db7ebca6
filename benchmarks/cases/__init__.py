"""The cases, in the order ``python -m benchmarks`` runs them. Each module has a
``build() -> Case``; add a module here to add a case. Peers registered in
``benchmarks.peers.PEERS`` (with their venv present) become extra variants."""

from __future__ import annotations

from importlib import import_module

from ..framework import Variant
from ..peers import PEERS, peer_python, run_peer

CASE_MODULES = ["fire", "fire_many", "consume", "handler_io", "latency", "backlog_memory", "scale_out"]


def _peer_variant(peer: str, case_name: str) -> Variant:
    def run(ctx, rep):
        return run_peer(peer, case_name, ctx.redis_url, ctx.quick)

    return Variant(peer, run, description=f"{peer}, in its own venv")


def build_cases(names=None):
    wanted = CASE_MODULES if not names else names
    unknown = [n for n in wanted if n not in CASE_MODULES]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASE_MODULES)}")
    cases = [import_module(f"{__name__}.{n}").build() for n in CASE_MODULES if n in wanted]
    for case in cases:
        for peer, spec in PEERS.items():
            if case.name in spec.get("cases", ()) and peer_python(peer).exists():
                case.variants.append(_peer_variant(peer, case.name))
    return cases
