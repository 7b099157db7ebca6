"""lightbus_sync.contrib.flask.LightbusSync in-process: the bus from app.config, the
listener thread, the reloader-parent rule, and testing views with record_events."""

from __future__ import annotations

import json
import signal
import threading

import click
import flask
import flask.cli
import pytest

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.contrib.flask import LightbusSync, in_reloader_parent
from lightbus_sync.testing import record_events


class FlaskExtApi(Api):
    signed_up = Event(parameters=(Parameter("username", str),))

    class Meta:
        name = "flask_ext.users"


FAST = {"apis": {"default": {"event_transport": {"redis": {"block_ms": 100}}}}}


@pytest.fixture(autouse=True)
def keep_signal_handlers():
    """A listener started here chains the stop signals in this (pytest's) process: undo."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("WERKZEUG_RUN_MAIN", "FLASK_DEBUG", "LIGHTBUS_REDIS_URL", "LIGHTBUS_SERVICE_NAME",
                 "LIGHTBUS_PROCESS_NAME", "LIGHTBUS_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def extensions():
    """LightbusSync objects made by a test; their listeners stopped, buses closed."""
    made: list[LightbusSync] = []
    yield made
    for ext in made:
        ext.stop_listener(5)
        if ext._bus is not None:
            ext._bus.close()


def make_app(**config) -> flask.Flask:
    app = flask.Flask("flask_ext_tests")
    app.config.update(config)
    return app


def test_bus_from_app_config_and_exposed_on_the_app(extensions, tmp_path):
    config_file = tmp_path / "bus.json"
    config_file.write_text(json.dumps({"apis": {"default": {"event_fire_timeout": 2.5}}}))
    app = make_app(LIGHTBUS_REDIS_URL="redis://127.0.0.1:1/3", LIGHTBUS_SERVICE_NAME="web",
                   LIGHTBUS_PROCESS_NAME="web-1", LIGHTBUS_CONFIG=str(config_file))
    ext = LightbusSync(app)
    extensions.append(ext)
    assert app.extensions["lightbus_sync"] is ext
    bus = ext.bus
    assert isinstance(bus, lightbus_sync.Bus)
    assert (bus.service_name, bus.process_name) == ("web", "web-1")
    assert bus.config.api("default").redis.url == "redis://127.0.0.1:1/3"
    assert bus.config.api("default").event_fire_timeout == 2.5
    assert ext.listener is None  # LIGHTBUS_LISTEN defaults to False


def test_config_mapping_environment_fallback_and_default_service_name(extensions, monkeypatch):
    monkeypatch.setenv("LIGHTBUS_REDIS_URL", "redis://127.0.0.1:1/5")
    app = flask.Flask("shop_service.web")
    app.config["LIGHTBUS_CONFIG"] = {"apis": {"default": {"event_fire_timeout": 1.5}}}
    ext = LightbusSync()
    extensions.append(ext)
    with pytest.raises(RuntimeError, match="init_app"):
        ext.bus
    ext.init_app(app)
    assert ext.bus.config.api("default").redis.url == "redis://127.0.0.1:1/5"
    assert ext.bus.config.api("default").event_fire_timeout == 1.5
    assert ext.bus.service_name == "shop_service"  # the app's package, not lightbus_sync


def test_listen_true_runs_the_listeners_in_a_thread_and_views_fire(extensions, redis_url, redis_client):
    app = make_app(LIGHTBUS_REDIS_URL=redis_url, LIGHTBUS_SERVICE_NAME="web", LIGHTBUS_LISTEN=True,
                   LIGHTBUS_CONFIG=FAST)
    ext = LightbusSync(listener_options={"threads": 2})
    extensions.append(ext)
    seen: list[str] = []
    arrived = threading.Event()

    @ext.listen("flask_ext.users.signed_up", listener_name="welcome")  # before init_app: deferred
    def welcome(username):
        seen.append(username)
        arrived.set()

    ext.init_app(app)

    @app.post("/signup/<name>")
    def signup(name):
        return {"id": ext.bus.flask_ext.users.signed_up.fire(username=name).id}

    assert ext.listener is not None and ext.listener.threads == 2
    assert ext.listener.wait_until_ready(10)
    response = app.test_client().post("/signup/ada")
    assert response.status_code == 200
    assert arrived.wait(10) and seen == ["ada"]
    assert [g["name"] for g in redis_client.xinfo_groups("flask_ext.users.*:stream")] == [b"web-welcome"]
    assert ext.start_listener() is ext.listener  # once
    assert ext.stop_listener(5) is True and ext.listener is None
    assert ext.stop_listener() is True  # idempotent


def test_views_that_fire_can_be_tested_with_record_events(extensions):
    app = make_app(LIGHTBUS_REDIS_URL="redis://127.0.0.1:1/0", LIGHTBUS_SERVICE_NAME="web")
    ext = LightbusSync(app)
    extensions.append(ext)

    @app.post("/signup/<name>")
    def signup(name):
        ext.bus.flask_ext.users.signed_up.fire(username=name)
        return "", 204

    with record_events(ext.bus) as recorder:
        assert app.test_client().post("/signup/eve").status_code == 204
    recorder.assert_fired_once("flask_ext.users.signed_up", username="eve")


def test_reloader_parent_rule(monkeypatch):
    app = make_app()
    assert in_reloader_parent(app) is False  # gunicorn, a plain script...
    app.debug = True
    assert in_reloader_parent(app) is None  # maybe app.run()'s reloader parent: undecided
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    assert in_reloader_parent(app) is False  # the reloader's serving child
    monkeypatch.delenv("WERKZEUG_RUN_MAIN")
    app.debug = False

    def under_flask_run(reload, debug):
        if debug:
            monkeypatch.setenv("FLASK_DEBUG", "1")
        else:
            monkeypatch.delenv("FLASK_DEBUG", raising=False)
        with click.Context(flask.cli.run_command, info_name="run") as context:
            context.params = {"reload": reload, "host": "127.0.0.1"}
            return in_reloader_parent(app)

    assert under_flask_run(None, debug=False) is False  # flask run
    assert under_flask_run(None, debug=True) is True  # flask run --debug: reloader on
    assert under_flask_run(False, debug=True) is False  # flask run --debug --no-reload
    assert under_flask_run(True, debug=False) is True  # flask run --reload


def test_debug_outside_flask_run_starts_the_listener_with_the_first_request(extensions, redis_url):
    app = make_app(LIGHTBUS_REDIS_URL=redis_url, LIGHTBUS_SERVICE_NAME="web", LIGHTBUS_LISTEN=True,
                   LIGHTBUS_CONFIG=FAST, DEBUG=True)
    ext = LightbusSync()
    extensions.append(ext)
    ext.listen("flask_ext.users.signed_up", listener_name="welcome")(lambda username: None)
    ext.init_app(app)
    assert ext.listener is None

    @app.get("/")
    def index():
        return "ok"

    app.test_client().get("/")
    assert ext.listener is not None and ext.listener.wait_until_ready(10)
    first = ext.listener
    app.test_client().get("/")
    assert ext.listener is first


def test_reloader_parent_under_flask_run_does_not_listen(extensions, monkeypatch, redis_url):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = make_app(LIGHTBUS_REDIS_URL=redis_url, LIGHTBUS_SERVICE_NAME="web", LIGHTBUS_LISTEN=True)
    ext = LightbusSync()
    extensions.append(ext)
    ext.listen("flask_ext.users.signed_up", listener_name="welcome")(lambda username: None)
    with click.Context(flask.cli.run_command, info_name="run") as context:
        context.params = {"reload": None}
        ext.init_app(app)
    assert ext.listener is None
