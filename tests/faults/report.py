"""Run the fault-injection scenarios and print what the runner survived:

    python tests/faults/report.py

(the same table closes every `python -m pytest` run that includes tests/faults).
"""

import sys
from pathlib import Path

import pytest

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.exit(pytest.main([str(here), "-q", "-p", "no:cacheprovider", "--rootdir", str(here.parent.parent)]))
