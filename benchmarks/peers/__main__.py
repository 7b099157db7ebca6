"""``python -m benchmarks.peers``: find, verify or build (once) every peer's
virtualenv and say where it is; exit 1 if one cannot be had. ``python -m
benchmarks`` does the same before it runs the cases."""

import sys

from . import prepare

statuses = prepare()
sys.exit(0 if all(s.python for s in statuses.values()) else 1)
