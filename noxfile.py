"""The interpreter matrix and the checks CI runs besides the test suite.

    nox -s core          # the core subset on every Python it finds (3.10-3.13)
    nox -s tests-3.12    # the whole suite on one of them
    nox -l               # every session

Interpreters are found as ``python3.X`` on the PATH, else as pyenv versions
(``pyenv prefix``); one that is absent is skipped with a message (``nox`` says
"Python interpreter 3.X not found"), unless ``--error-on-missing-interpreters``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
#: The interpreter of the README's test command (CI runs the whole suite there).
MAIN_PYTHON = "3.11"

#: The fast core: definitions, fire, types, wire, config and the runner's basics.
CORE_TESTS = [
    "tests/test_core_definitions.py",
    "tests/test_typed_api.py",
    "tests/test_core_fire.py",
    "tests/test_core_types.py",
    "tests/test_core_wire.py",
    "tests/test_core_config.py",
    "tests/test_runner_listen.py",
]

#: Test extras and tools, one per line (the package's own extras are in pyproject.toml).
TEST_EXTRAS = "embedded,yaml,flask,metrics"
TEST_TOOLS = ["pytest>=7.4", "pytest-timeout>=2.2", "psutil>=5.9"]
LINT_TOOLS = ["ruff>=0.6"]
TYPE_TOOLS = ["mypy>=1.11", "types-PyYAML", "tomli", "pytest>=7.4"]  # tomli: checked as on Python 3.10
#: The extras whose typed libraries the package uses where they are installed.
TYPE_EXTRAS = "embedded,yaml,flask,metrics,sql,otel,dashboard"

ROOT = Path(__file__).resolve().parent

nox.options.download_python = "never"
nox.options.sessions = ["core", "oldest", "lint", "typecheck", "package"]
nox.options.reuse_venv = "yes"


def _runs(executable: str) -> bool:
    try:
        return subprocess.run([executable, "-c", "pass"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _pyenv(*args: str) -> str:
    try:
        return subprocess.run(["pyenv", *args], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _put_on_path(version: str) -> None:
    """Make ``python<version>`` runnable for nox: as it is on the PATH, else pyenv's newest
    ``<version>.N`` (a pyenv shim of a version that is not active does not run)."""
    found = shutil.which(f"python{version}")
    if found and _runs(found):
        return
    patches = [
        v for v in _pyenv("versions", "--bare").split()
        if v.startswith(version + ".") and v[len(version) + 1:].isdigit()
    ]
    if not patches:
        return
    newest = max(patches, key=lambda v: int(v.rsplit(".", 1)[1]))
    prefix = _pyenv("prefix", newest).strip()
    if prefix and _runs(os.path.join(prefix, "bin", f"python{version}")):
        os.environ["PATH"] = os.path.join(prefix, "bin") + os.pathsep + os.environ.get("PATH", "")


for _version in PYTHONS:
    _put_on_path(_version)


def _install_package(session: nox.Session, *constraints: str) -> None:
    session.install(*constraints, *TEST_TOOLS, "-e", f".[{TEST_EXTRAS}]")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite (about four minutes on 3.11)."""
    _install_package(session)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHONS)
def core(session: nox.Session) -> None:
    """The core subset: what every interpreter must pass, quickly."""
    _install_package(session)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *(session.posargs or CORE_TESTS))


def _lower_bounds() -> list[str]:
    """``name==X`` for each ``name>=X`` runtime dependency in pyproject.toml (on this
    interpreter: markers are kept)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = []
    for requirement in project["dependencies"]:
        spec, _, marker = requirement.partition(";")
        name, _, version = spec.partition(">=")
        pins.append(f"{name.strip()}=={version.strip()}" + (f"; {marker.strip()}" if marker else ""))
    return pins


@nox.session(python=PYTHONS[0])
def oldest(session: nox.Session) -> None:
    """The oldest Python with the oldest versions pyproject.toml admits (redis-py,
    attrs, cattrs, fastjsonschema), so the lower bounds stay true."""
    pins = _lower_bounds()
    with tempfile.TemporaryDirectory() as directory:
        constraints = Path(directory) / "lowest.txt"
        constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
        _install_package(session, "-c", str(constraints))
        session.run("python", "-m", "pip", "list")
        # The resolver took exactly the lower bounds (23.1 is 23.1.0).
        check = (
            "import importlib.metadata as m, re, sys\n"
            "def key(v): return [int(x) for x in re.findall(r'\\d+', v)] + [0] * 4\n"
            "for pin in sys.argv[1:]:\n"
            "    requirement, _, marker = pin.partition(';')\n"
            "    name, _, want = requirement.strip().partition('==')\n"
            "    try: got = m.version(name)\n"
            "    except m.PackageNotFoundError:\n"
            "        if marker: continue  # not for this Python\n"
            "        raise\n"
            "    if key(got)[:4] != key(want)[:4]: sys.exit(f'{name} is {got}, not {want}')\n"
            "    print(name, got)\n"
        )
        session.run("python", "-c", check, *pins)
        session.run(
            "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
            *(session.posargs or [*CORE_TESTS, "tests/test_core_transport.py", "tests/test_runner_failures.py"]),
        )


@nox.session(python=MAIN_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, with the rule set chosen in pyproject.toml."""
    session.install(*LINT_TOOLS)
    session.run("ruff", "check", *(session.posargs or ["."]))


@nox.session(python=MAIN_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package (pyproject.toml's settings), then on code written as
    users write it (tests/typing/user_code.py), seeing the package as a user's checker
    sees an installed one."""
    session.install(*TYPE_TOOLS, "-e", f".[{TYPE_EXTRAS}]")
    session.run("mypy")
    session.run("mypy", "--strict", "--follow-imports=silent", "tests/typing/user_code.py")


@nox.session(python=MAIN_PYTHON)
def package(session: nox.Session) -> None:
    """Build the sdist and wheel from a clean clone of HEAD; install the wheel in a fresh
    venv outside the tree, run the demo and ``pip check``; run tests from the sdist."""
    session.install("build>=1.0")
    with tempfile.TemporaryDirectory(prefix="lightbus-sync-package-") as directory:
        work = Path(directory)
        clone, dist, venv, unpacked = work / "clone", work / "dist", work / "venv", work / "sdist"
        session.run("git", "clone", "--quiet", "--no-local", str(ROOT), str(clone), external=True)
        session.run("python", "-m", "build", "--outdir", str(dist), str(clone))
        (sdist,) = dist.glob("*.tar.gz")
        (wheel,) = dist.glob("*.whl")
        session.run("python", str(ROOT / ".ci" / "check_sdist.py"), str(sdist), str(unpacked))
        session.chdir(work)  # nothing of the tree is importable from here
        session.run("python", "-m", "venv", str(venv))
        python, bin_dir = str(venv / "bin" / "python"), venv / "bin"
        clean_env = {"PYTHONPATH": None, "LIGHTBUS_REDIS_URL": None, "LIGHTBUS_CONFIG": None}
        session.run(python, "-m", "pip", "install", "--quiet", f"{wheel}[embedded]", external=True)
        session.run(python, "-m", "pip", "check", external=True, env=clean_env)
        session.run(str(bin_dir / "lightbus-sync"), "demo", external=True, env=clean_env)
        # The sdist's own tests run against the installed wheel.
        session.run(python, "-m", "pip", "install", "--quiet", *TEST_TOOLS, external=True)
        session.chdir(unpacked)
        session.run(
            str(bin_dir / "pytest"), "-q", "-p", "no:cacheprovider", "tests/test_core_definitions.py",
            external=True, env=clean_env,
        )
