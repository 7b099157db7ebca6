"""Check that an sdist carries what its test suite needs, and unpack it.

    python .ci/check_sdist.py dist/lightbus_sync-X.tar.gz DESTINATION
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

REQUIRED = [
    "LICENSE",
    "README.md",
    "pyproject.toml",
    "setup.py",
    "pytest.ini",
    "requirements-dev.txt",
    "lightbus_sync/py.typed",
    "lightbus_sync/lua/dead_letter.lua",
    "tests/conftest.py",
    "tests/test_docs.py",
    "tests/runner_apps/harness.py",
    "tests/fixtures/lightbus_wire/fired_event.json",
    "tests/fixtures/lightbus_schemas/my_company.auth.json",
    "tests/faults/app/fault_bus.py",
    "tests/interop/lightbus.yaml",
    "docs/index.md",
    "docs/testing.md",
    "examples/flask_app/app.py",
]


def main(sdist: str, destination: str) -> int:
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        top = names[0].split("/")[0]
        members = {name[len(top) + 1:] for name in names}
        missing = [path for path in REQUIRED if path not in members]
        if missing:
            print(f"{sdist} lacks: {', '.join(missing)}", file=sys.stderr)
            return 1
        stray = sorted(m for m in members if "__pycache__" in m or m.endswith((".pyc", ".rdb", ".aof")))
        if stray:
            print(f"{sdist} carries build leftovers: {', '.join(stray[:10])}", file=sys.stderr)
            return 1
        target = Path(destination).parent / "sdist-unpacked"
        if hasattr(tarfile, "data_filter"):
            archive.extractall(target, filter="data")
        else:
            archive.extractall(target)
    (Path(destination).parent / "sdist-unpacked" / top).rename(destination)
    print(f"{sdist}: {len(members)} files, the tests' files present; unpacked in {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
