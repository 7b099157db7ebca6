"""Case ``consume_python_parser``: the ``consume`` case's bare loop and runner
(threads=8) again, both in a child interpreter where redis-py parses replies in
Python (hiredis hidden: ``benchmarks/isolated.py``), so that the ratio compares the
runner and the bare loop on the same parser, as ``consume`` does with hiredis.
"""

from __future__ import annotations

from ..framework import Case, Metric, Target, Variant
from ..isolated import python_parser

BARE = "bare XREADGROUP+XACK"
RUNNER = "runner threads=8"
FLOOR = "decode+call loop (the Python floor)"


def build() -> Case:
    return Case(
        name="consume_python_parser",
        title="consume with redis-py's pure-Python parser (no hiredis), 8 threads",
        description=__doc__,
        variants=[
            Variant(f"{BARE} (Python parser)", python_parser("consume", BARE), baseline=True),
            Variant(f"{RUNNER} (Python parser)", python_parser("consume", RUNNER)),
            Variant(f"{FLOOR} (Python parser)", python_parser("consume", FLOOR)),
        ],
        metrics=[
            Metric("rate", "handled", "events/s"),
            Metric("cpu_us", "process CPU per event", "us", higher_is_better=False, fmt="{:,.1f}"),
        ],
        targets=[Target(f"{RUNNER} (Python parser)", "rate", ">=", 0.8)],
        parameters={"events": {"quick": 6_000, "full": 50_000}, "batch_size": 100, "parser": "python"},
    )
