"""The cases, in the order ``python -m benchmarks`` runs them. Each module has a
``build() -> Case``; add a module here to add a case. The peers of
``benchmarks.peers.PEERS`` handed to ``build_cases`` become extra variants of the
cases they run (not run, saying why, when their venv could not be had), each with its
``Comparison`` to a lightbus_sync variant."""

from __future__ import annotations

from importlib import import_module

from ..framework import Comparison, Variant
from ..peers import PEERS, PeerCase, PeerStatus

CASE_MODULES = ["fire", "fire_tracing", "fire_many", "consume", "consume_python_parser", "handler_io", "latency",
                "backlog_memory", "scale_out", "cluster_scale", "outbox_fire", "outbox_relay", "outbox_latency", "inbox",
                "replicated_fire"]


def _peer_variant(status: PeerStatus, peer_case: PeerCase) -> Variant:
    def run(ctx, rep):
        from ..peers import host

        return host.run(ctx, status, peer_case.host)

    description = f"{peer_case.description} ({status.venv.directory if status.venv else 'no venv'})"
    return Variant(status.variant_name(peer_case), run, description=description,
                   skip="" if status.python else f"not run: {status.problem}",
                   reps=status.peer.reps, quick_reps=status.peer.quick_reps,
                   ratio_to_baseline=peer_case.ratio_to_baseline)


def peers_for(names=None) -> list[str]:
    """The peers that run at least one of the cases ``names`` (all cases if None)."""
    wanted = set(CASE_MODULES if not names else names)
    return [key for key, peer in PEERS.items() if any(pc.case in wanted for pc in peer.cases)]


def build_cases(names=None, peers: dict[str, PeerStatus] = None):
    wanted = CASE_MODULES if not names else names
    unknown = [n for n in wanted if n not in CASE_MODULES]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASE_MODULES)}")
    cases = [import_module(f"{__name__}.{n}").build() for n in CASE_MODULES if n in wanted]
    for case in cases:
        for status in (peers or {}).values():
            for peer_case in status.peer.cases:
                if peer_case.case == case.name:
                    variant = _peer_variant(status, peer_case)
                    case.variants.append(variant)
                    case.comparisons.append(Comparison(peer_case.compare_with, variant.name, peer_case.metrics))
    return cases
