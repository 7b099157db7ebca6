"""The user's page (/work/shared/seed/events.md), run as written in a real process:
`lightbus` is lightbus_sync (a one-line shim), the examples are copied verbatim.
Every example works; every mistake on the page gets a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SHIM = "from lightbus_sync import *  # noqa: F401,F403\nfrom lightbus_sync import create, Api, Event, Parameter  # noqa\n"

# "Defining events", verbatim
AUTH_SERVICE_BUS = '''\
# auth_service/bus.py
from lightbus import Api, Event


class AuthApi(Api):
    user_created = Event(parameters=('username', 'email'))
    user_updated = Event(parameters=('username', 'new_email'))
    user_deleted = Event(parameters=('username'))

    class Meta:
        name = 'auth'
'''

# "Type hints", verbatim (the page's snippet extends the one above; it has no Meta)
TYPED_SNIPPET = '''\
# auth_service/bus.py
from lightbus import Api, Event, Parameter


class AuthApi(Api):
    user_created = Event(parameters=(
        Parameter('username', str),
        Parameter('new_email', str),
    ))
    user_updated = Event(parameters=(
        Parameter('username', str),
        Parameter('new_email', str),
    ))
    user_deleted = Event(parameters=(
        Parameter('username', str),
    ))
    # You can also set default values
    permission_changed = Event(parameters=(
        Parameter('username', str),
        Parameter('is_admin', bool, default=False),
    ))
'''

# "Listening for events", verbatim
OTHER_SERVICE_BUS = '''\
# other_service/bus.py
import lightbus

bus = lightbus.create()
user_db = {}


def handle_created(username, email):
    user_db[username] = email
    print(user_db)


def handle_updated(username, email):
    user_db[username] = email
    print(user_db)


def handle_deleted(username, email):
    user_db.pop(username)
    print(user_db)


def before_server_start():
    # before_server_start() is called on lightbus startup,
    # this allows you to setup your listeners.

    bus.auth.user_created.listen(handle_created)
    bus.auth.user_updated.listen(handle_updated)
    bus.auth.user_deleted.listen(handle_deleted)
'''

FIRING = '''\
import asyncio, json, sys

# Import your project's bus instance
from bus import bus
import lightbus

results = {}

def attempt(name, call):
    try:
        message = call()
        results[name] = {"ok": dict(message.kwargs), "stream_id": message.stream_id}
    except lightbus.LightbusError as exc:
        results[name] = {"error": type(exc).__name__, "message": str(exc)}

# "Firing events", verbatim
attempt("page_fire", lambda: bus.auth.user_created.fire(username='adam', password='adam@example.com'))
# ... and as intended
attempt("fire", lambda: bus.auth.user_created.fire(username='adam', email='adam@example.com'))

async def page_async():
    return await bus.auth.user_created.fire_async(
        username='adam',
        password='adam@example.com'
    )

async def intended_async():
    return await bus.auth.user_created.fire_async(username='adam', email='adam@example.com')

attempt("page_fire_async", lambda: asyncio.run(page_async()))
attempt("fire_async", lambda: asyncio.run(intended_async()))
attempt("user_deleted", lambda: bus.auth.user_deleted.fire(username='adam'))
attempt("typo", lambda: bus.auth.user_craeted.fire(username='adam', email='adam@example.com'))
print("RESULTS", json.dumps(results))
bus.close()
'''

TYPED_FIRING = '''\
import json
from bus import bus
import lightbus

results = {}

def attempt(name, call):
    try:
        message = call()
        results[name] = {"ok": dict(message.kwargs)}
    except lightbus.LightbusError as exc:
        results[name] = {"error": type(exc).__name__, "message": str(exc)}

attempt("defaulted", lambda: bus.auth.permission_changed.fire(username='adam'))
attempt("admin", lambda: bus.auth.permission_changed.fire(username='adam', is_admin=True))
attempt("not_a_bool", lambda: bus.auth.permission_changed.fire(username='adam', is_admin='yes'))
attempt("not_a_str", lambda: bus.auth.permission_changed.fire(username=42))
attempt("no_username", lambda: bus.auth.permission_changed.fire(is_admin=False))
print("RESULTS", json.dumps(results))
bus.close()
'''


def _run(cwd: Path, redis_url: str, code: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    environment["LIGHTBUS_REDIS_URL"] = redis_url
    environment["PYTHONPATH"] = str(cwd)
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environment, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [l for l in result.stdout.splitlines() if l.startswith("RESULTS ")][-1]
    return json.loads(line[len("RESULTS "):])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "lightbus.py").write_text(SHIM)
    (tmp_path / "auth_service").mkdir()
    (tmp_path / "auth_service" / "__init__.py").write_text("")
    (tmp_path / "auth_service" / "bus.py").write_text(AUTH_SERVICE_BUS)
    (tmp_path / "bus.py").write_text("import lightbus\nimport auth_service.bus  # the API\n\nbus = lightbus.create()\n")
    return tmp_path


def test_defining_and_firing_as_on_the_page(project, redis_url, redis_client):
    results = _run(project, redis_url, FIRING)
    # the page's call passes `password` to an event taking username and email: refused, clearly
    for name in ("page_fire", "page_fire_async"):
        assert results[name]["error"] == "UnexpectedParameter"
        message = results[name]["message"]
        assert "'password'" in message and "username, email" in message and "auth.user_created" in message
    assert results["fire"]["ok"] == {"username": "adam", "email": "adam@example.com"}
    assert results["fire_async"]["ok"] == {"username": "adam", "email": "adam@example.com"}
    assert results["user_deleted"]["ok"] == {"username": "adam"}  # ('username') is one parameter
    assert results["typo"]["error"] == "UnknownEvent" and "did you mean 'user_created'?" in results["typo"]["message"]
    entries = redis_client.xrange("auth.*:stream")
    assert [e[0].decode() for e in entries] == [
        results["fire"]["stream_id"], results["fire_async"]["stream_id"], results["user_deleted"]["stream_id"]]


def test_type_hints_as_on_the_page(project, redis_url, redis_client):
    # verbatim, the snippet has no Meta: a clear error says what is missing
    (project / "auth_service" / "bus.py").write_text(TYPED_SNIPPET)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    environment["PYTHONPATH"] = str(project)
    result = subprocess.run([sys.executable, "-c", "import auth_service.bus"], cwd=project, env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "InvalidApiDefinition" in result.stderr and "needs a Meta class with a name" in result.stderr
    # with the Meta of the example it extends, it works as described
    (project / "auth_service" / "bus.py").write_text(
        TYPED_SNIPPET + "\n    class Meta:\n        name = 'auth'\n")
    results = _run(project, redis_url, TYPED_FIRING)
    assert results["defaulted"]["ok"] == {"username": "adam", "is_admin": False}
    assert results["admin"]["ok"] == {"username": "adam", "is_admin": True}
    assert results["not_a_bool"]["error"] == "InvalidParameterValue"
    assert "'is_admin' expects bool" in results["not_a_bool"]["message"]
    assert results["not_a_str"]["error"] == "InvalidParameterValue"
    assert results["no_username"]["error"] == "MissingParameter"
    fields = [e[1] for e in redis_client.xrange("auth.*:stream")]
    assert [(f[b":username"], f[b":is_admin"]) for f in fields] == [(b'"adam"', b"false"), (b'"adam"', b"true")]


def test_the_listening_example_gets_clear_errors(project, redis_url):
    """The page's listeners omit listener_name (required by Lightbus 1.1.2 as well: it
    names the consumer group) and take an `email` that user_deleted does not have."""
    (project / "other_service").mkdir()
    (project / "other_service" / "__init__.py").write_text("")
    (project / "other_service" / "bus.py").write_text(OTHER_SERVICE_BUS)
    code = textwrap.dedent("""\
        import json, lightbus
        import auth_service.bus
        from other_service import bus as module
        problems = []
        try:
            module.before_server_start()
        except lightbus.LightbusError as exc:
            problems.append([type(exc).__name__, str(exc)])
        try:
            module.bus.auth.user_deleted.listen(module.handle_deleted, listener_name="deleted")
        except lightbus.LightbusError as exc:
            problems.append([type(exc).__name__, str(exc)])
        print("RESULTS", json.dumps(problems))
        """)
    problems = _run(project, redis_url, code)
    assert problems[0][0] == "InvalidListener" and "listener_name" in problems[0][1]
    assert problems[1][0] == "InvalidListener" and "'email'" in problems[1][1]
