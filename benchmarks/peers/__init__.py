"""Peer comparisons: the same cases run by other libraries, each in its own venv.

Not implemented yet. The place for them:

- one module per peer here, e.g. ``peers/lightbus_1_1_2.py`` (Lightbus 1.1.2,
  asyncio) and ``peers/dramatiq.py`` (Dramatiq + its Redis broker);
- each peer module is a small program run with ``<venv>/bin/python -m
  benchmarks.peers.<module> --redis-url URL --case NAME --quick`` from that peer's
  own virtualenv (``benchmarks/.venvs/<peer>/``, made from
  ``benchmarks/peers/<peer>.requirements.txt``), so its dependencies never meet
  lightbus_sync's; it prints one JSON object ``{"metric": value, ...}`` per run on
  stdout, with the same metric keys as the case's variants (``rate``, ``p50_us``...);
- ``PEERS`` below maps a peer to the cases it implements; ``cases.build_cases``
  adds one variant per (peer, case) whose venv exists, calling ``run_peer`` on the
  same Redis, interleaved with the case's other variants like any variant.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

#: peer name -> {"module": "benchmarks.peers.<module>", "cases": [...], "venv": path}
PEERS: dict[str, dict] = {}

VENVS = Path(__file__).resolve().parent.parent / ".venvs"


def peer_python(peer: str) -> Path:
    return Path(PEERS[peer].get("venv", VENVS / peer)) / "bin" / "python"


def run_peer(peer: str, case: str, redis_url: str, quick: bool, timeout: float = 300) -> dict[str, float]:
    """Run one repetition of ``case`` in ``peer``'s venv; return its metrics."""
    spec = PEERS[peer]
    command = [str(peer_python(peer)), "-m", spec["module"], "--redis-url", redis_url, "--case", case]
    if quick:
        command.append("--quick")
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    return json.loads(out.stdout.strip().splitlines()[-1])
