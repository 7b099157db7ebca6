"""One variant of a case in a child interpreter whose redis-py parses replies in Python
(``benchmarks/no_hiredis`` first on its path hides hiredis), so that a case can compare
both parsers in one run, each variant against a baseline on the same parser.

``python -m benchmarks.isolated CASE VARIANT REP`` (the context comes as JSON in
``$BENCH_CONTEXT``) runs the case's setup, the variant, its teardown, and prints the
metrics as the last line of JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from importlib import import_module
from pathlib import Path
from typing import Callable

from .framework import Context

NO_HIREDIS = Path(__file__).resolve().parent / "no_hiredis"


def python_parser(case_module: str, variant: str) -> Callable[[Context, int], dict[str, float]]:
    """A variant's ``run`` that runs ``variant`` of ``cases/<case_module>.py`` under the
    pure-Python parser, in a child process."""

    def run(ctx: Context, rep: int) -> dict[str, float]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(NO_HIREDIS), env.get("PYTHONPATH"), ctx.repo_root) if p)
        env["BENCH_CONTEXT"] = json.dumps({k: v for k, v in asdict(ctx).items() if k != "scratch"})
        done = subprocess.run([sys.executable, "-m", "benchmarks.isolated", case_module, variant, str(rep)],
                              cwd=ctx.repo_root, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"{case_module} / {variant} (Python parser) failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


def main(argv: list[str]) -> int:
    import redis.utils

    if redis.utils.HIREDIS_AVAILABLE:
        raise SystemExit("hiredis is still importable: benchmarks/no_hiredis must come first on PYTHONPATH")
    case_module, variant_name, rep = argv
    case = import_module(f"benchmarks.cases.{case_module}").build()
    variant = next(v for v in case.variants if v.name == variant_name)
    ctx = Context(**json.loads(os.environ["BENCH_CONTEXT"]))
    if case.setup is not None:
        case.setup(ctx)
    try:
        metrics = variant.run(ctx, int(rep))
    finally:
        if case.teardown is not None:
            case.teardown(ctx)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
