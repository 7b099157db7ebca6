"""Configuration: precedence (create() > environment > file > defaults), YAML/JSON/TOML
files in Lightbus's shape, every Lightbus 1.1.2 key accepted, clear errors naming the
key's path, and the stable default service name."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lightbus_sync
from lightbus_sync import Api, Event
from lightbus_sync.config import RootConfig, load_config
from lightbus_sync.errors import ConfigurationError

LIGHTBUS_PYTHON = Path("/opt/lightbus-venv/bin/python")
ENV_NAMES = ("LIGHTBUS_REDIS_URL", "LIGHTBUS_SERVICE_NAME", "LIGHTBUS_PROCESS_NAME", "LIGHTBUS_CONFIG")


class CoreConfigApi(Api):
    ping = Event(parameters=["n"])

    class Meta:
        name = "core_config"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def buses():
    made = []
    yield made
    for bus in made:
        bus.close()


# --- the Lightbus files ------------------------------------------------------------------

#: /tmp/lightbus_facts.md, "Minimal config Lightbus accepts (VERIFIED)"
MINIMAL_LIGHTBUS_YAML = """\
service_name: lbtest
process_name: worker1
bus:
  schema:
    transport:
      redis:
        url: redis://127.0.0.1:PORT/0
apis:
  default:
    event_transport:
      redis:
        url: redis://127.0.0.1:PORT/0
    rpc_transport:
      redis:
        url: redis://127.0.0.1:PORT/0
    result_transport:
      redis:
        url: redis://127.0.0.1:PORT/0
"""

#: Every key `lightbus dumpconfigschema` (1.1.2) lists, with its default, plus the
#: places where Lightbus's schema allows null. Lightbus itself loads it (see below).
EVERY_LIGHTBUS_KEY_YAML = """\
service_name: everything
process_name: "{hostname}-{pid}"
bus:
  log_level: info
  schema:
    human_readable: true
    ttl: 60
    transport:
      redis:
        url: redis://127.0.0.1:PORT/0
        connection_parameters: {}
      debug: null
apis:
  default:
    rpc_timeout: 5
    event_listener_setup_timeout: 1
    event_fire_timeout: 5
    validate:
      outgoing: true
      incoming: true
    strict_validation: false
    cast_values: true
    event_transport:
      redis:
        url: redis://127.0.0.1:PORT/0
        service_name: null
        consumer_name: null
        connection_parameters:
          maxsize: 100
        batch_size: 10
        reclaim_batch_size: null
        serializer: lightbus.serializers.ByFieldMessageSerializer
        deserializer: lightbus.serializers.ByFieldMessageDeserializer
        acknowledgement_timeout: 60
        reclaim_interval: null
        max_stream_length: 100000
        stream_use: per_api
        consumption_restart_delay: 5
        consumer_ttl: 2592000
      debug: null
    rpc_transport:
      redis:
        url: redis://127.0.0.1:PORT/0
        connection_parameters:
          maxsize: 100
        batch_size: 10
        serializer: lightbus.serializers.BlobMessageSerializer
        deserializer: lightbus.serializers.BlobMessageDeserializer
        rpc_timeout: 5
        rpc_retry_delay: 1
        consumption_restart_delay: 5
      debug: null
    result_transport:
      redis:
        url: redis://127.0.0.1:PORT/0
        connection_parameters:
          maxsize: 100
        serializer: lightbus.serializers.BlobMessageSerializer
        deserializer: lightbus.serializers.BlobMessageDeserializer
        result_ttl: 60
        rpc_timeout: 5
      debug: null
  core_config:
    validate: false
    event_transport: null
    rpc_transport:
      debug: {}
    result_transport: null
  core_config.other:
    validate: null
    event_transport:
      redis:
        max_stream_length: null
        stream_use: per_event
        consumer_ttl: 0
plugins:
  internal_state:
    enabled: false
    ping_enabled: true
    ping_interval: 60
  internal_metrics: null
"""


def _write(tmp_path: Path, name: str, text: str, port: int) -> Path:
    path = tmp_path / name
    path.write_text(text.replace("PORT", str(port)), encoding="utf-8")
    return path


def test_the_minimal_lightbus_yaml_loads_and_a_bus_fires_with_it(tmp_path, redis_server, redis_client, buses):
    path = _write(tmp_path, "lightbus.yaml", MINIMAL_LIGHTBUS_YAML, redis_server.port)
    bus = lightbus_sync.create(config_file=path)
    buses.append(bus)
    assert (bus.service_name, bus.process_name) == ("lbtest", "worker1")
    assert bus.config.api("core_config").redis.url == redis_server.url
    message = bus.core_config.ping.fire(n=1)
    assert redis_client.xrange("core_config.*:stream")[0][0].decode() == message.stream_id


def test_a_file_with_every_lightbus_key_loads(tmp_path, redis_server):
    path = _write(tmp_path, "lightbus.yaml", EVERY_LIGHTBUS_KEY_YAML, redis_server.port)
    config = load_config(path, environ={})
    assert config.service_name == "everything"
    assert config.process_name == f"{socket.gethostname().lower()}-{os.getpid()}"  # Lightbus's placeholders
    default = config.api("default")
    assert default.redis.url == redis_server.url and default.redis.batch_size == 10
    assert default.redis.reclaim_batch_size == 100  # null: our default
    assert default.redis.connection_parameters == {"maxsize": 100}
    # event_transport: null -> the default API's transport, as in Lightbus
    assert config.api("core_config").redis == default.redis
    assert config.api("core_config").validate.outgoing is False
    other = config.api("core_config.other")
    assert other.validate.outgoing is True and other.validate.incoming is True  # validate: null
    assert other.redis.max_stream_length is None and other.redis.stream_use == "per_event"
    assert other.redis.url == redis_server.url  # merged over apis.default
    assert math.isinf(other.redis.consumer_ttl)  # Lightbus: 0 disables the idle-consumer clean-up
    assert config.plugins.internal_state.ping_interval == 60


@pytest.mark.skipif(not LIGHTBUS_PYTHON.exists(), reason="real Lightbus 1.1.2 venv not installed here")
@pytest.mark.parametrize("text", [MINIMAL_LIGHTBUS_YAML, EVERY_LIGHTBUS_KEY_YAML], ids=["minimal", "every-key"])
def test_real_lightbus_accepts_these_files_too(tmp_path, text):
    """The samples above are genuine Lightbus config: Lightbus's own loader takes them."""
    path = _write(tmp_path, "lightbus.yaml", text, 6390)
    script = "import sys; from lightbus.config import Config; c = Config.load_file(sys.argv[1]); print(c.service_name)"
    result = subprocess.run([str(LIGHTBUS_PYTHON), "-c", script, str(path)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.skipif(not LIGHTBUS_PYTHON.exists(), reason="real Lightbus 1.1.2 venv not installed here")
def test_real_lightbus_refuses_bus_client_as_we_do(tmp_path):
    """There is no `bus.client` section in Lightbus 1.1.2: both refuse it."""
    path = tmp_path / "client.yaml"
    path.write_text("bus:\n  client: {}\n")
    script = "import sys; from lightbus.config import Config; Config.load_file(sys.argv[1])"
    result = subprocess.run([str(LIGHTBUS_PYTHON), "-c", script, str(path)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode != 0 and "'client' was unexpected" in result.stderr
    with pytest.raises(ConfigurationError, match=r"\$\.bus: unknown key\(s\) client"):
        load_config(path, environ={})


def _as_json(config: RootConfig) -> str:
    import attrs
    return json.dumps(attrs.asdict(config), sort_keys=True, default=str)


def test_yaml_json_and_toml_files_are_the_same_config(tmp_path):
    tree = {
        "service_name": "svc",
        "bus": {"log_level": "warning", "schema": {"ttl": 30}},
        "apis": {
            "default": {"event_fire_timeout": 3, "event_transport": {"redis": {
                "url": "redis://127.0.0.1:6390/2", "max_stream_length": 500, "stream_use": "per_event"}}},
            "core_config": {"validate": {"outgoing": False, "incoming": True}},
        },
    }
    import yaml
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tree))
    (tmp_path / "c.json").write_text(json.dumps(tree))
    (tmp_path / "c.toml").write_text(textwrap.dedent("""\
        service_name = "svc"
        [bus]
        log_level = "warning"
        [bus.schema]
        ttl = 30
        [apis.default]
        event_fire_timeout = 3
        [apis.default.event_transport.redis]
        url = "redis://127.0.0.1:6390/2"
        max_stream_length = 500
        stream_use = "per_event"
        [apis.core_config.validate]
        outgoing = false
        incoming = true
        """))
    (tmp_path / "lightbus.conf").write_text(yaml.safe_dump(tree))  # any other suffix: YAML, as Lightbus
    loaded = [load_config(tmp_path / name, environ={}) for name in ("c.yaml", "c.json", "c.toml", "lightbus.conf")]
    assert len({_as_json(c) for c in loaded}) == 1
    config = loaded[0]
    assert config.api("core_config").event_fire_timeout == 3  # merged over apis.default
    assert config.api("core_config").redis.max_stream_length == 500
    assert config.api("core_config").validate.outgoing is False
    assert config.bus.schema.ttl == 30 and config.bus.log_level == "warning"


# --- precedence ------------------------------------------------------------------------


def test_precedence_arguments_over_environment_over_file_over_defaults(tmp_path, monkeypatch):
    path = tmp_path / "bus.yaml"
    path.write_text(textwrap.dedent("""\
        service_name: from-file
        process_name: file-proc
        apis:
          default:
            event_fire_timeout: 7
            event_transport:
              redis:
                url: redis://127.0.0.1:6001/0
        """))
    # file over defaults
    config = load_config(path, environ={})
    assert (config.service_name, config.process_name) == ("from-file", "file-proc")
    assert config.api("x").redis.url == "redis://127.0.0.1:6001/0"
    assert config.api("x").event_fire_timeout == 7
    assert load_config(environ={}).api("x").redis.url == "redis://127.0.0.1:6379/0"  # the default
    # environment over file
    environ = {"LIGHTBUS_CONFIG": str(path), "LIGHTBUS_REDIS_URL": "redis://127.0.0.1:6002/0",
               "LIGHTBUS_SERVICE_NAME": "from-env", "LIGHTBUS_PROCESS_NAME": "env-proc"}
    config = load_config(environ=environ)  # the file comes from $LIGHTBUS_CONFIG
    assert (config.service_name, config.process_name) == ("from-env", "env-proc")
    assert config.api("x").redis.url == "redis://127.0.0.1:6002/0"
    assert config.bus.schema.transport.redis.url == "redis://127.0.0.1:6002/0"
    assert config.api("x").event_fire_timeout == 7  # what the environment does not set stays
    # arguments over environment
    config = load_config(environ=environ, redis_url="redis://127.0.0.1:6003/0", service_name="from-arg",
                         process_name="arg-proc", config={"apis": {"default": {"event_fire_timeout": 9}}})
    assert (config.service_name, config.process_name) == ("from-arg", "arg-proc")
    assert config.api("x").redis.url == "redis://127.0.0.1:6003/0"
    assert config.api("x").event_fire_timeout == 9
    # create() reads the real environment the same way
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    bus = lightbus_sync.create()
    try:
        assert (bus.service_name, bus.process_name) == ("from-env", "env-proc")
        assert bus.config.api("core_config").redis.url == "redis://127.0.0.1:6002/0"
    finally:
        bus.close()
    bus = lightbus_sync.create(service_name="from-arg", redis_url="redis://127.0.0.1:6003/0")
    try:
        assert bus.service_name == "from-arg" and bus.process_name == "env-proc"
        assert bus.config.api("core_config").redis.url == "redis://127.0.0.1:6003/0"
    finally:
        bus.close()


def test_transport_level_names_override_like_lightbus(caplog):
    config = load_config(environ={}, config={"service_name": "root", "apis": {
        "default": {"event_transport": {"redis": {"service_name": "groups", "consumer_name": "me"}}},
        "core_config": {"event_transport": {"redis": {"service_name": "elsewhere"}}},
    }})
    assert (config.service_name, config.process_name) == ("groups", "me")
    assert "apis.core_config.event_transport.redis.service_name" in caplog.text


def test_name_placeholders(caplog):
    with caplog.at_level(logging.WARNING):
        config = load_config(environ={}, service_name="{friendly}", process_name="worker-{random4}")
    assert "{" not in config.service_name and len(config.process_name) == len("worker-") + 4
    assert "changes on every start" in caplog.text
    with pytest.raises(ConfigurationError, match=r"\$\.service_name.*\{nope\}"):
        load_config(environ={}, service_name="svc-{nope}")


# --- errors name the key's path ----------------------------------------------------------


@pytest.mark.parametrize("tree, path, needle", [
    ({"bogus": 1}, "$", "unknown key(s) bogus"),
    ({"bus": {"bogus": 1}}, "$.bus", "bogus"),
    ({"bus": {"schema": {"transport": {"redis": {"uri": "x"}}}}}, "$.bus.schema.transport.redis", "uri"),
    ({"apis": {"default": {"event_transport": {"redis": {"acknowledgment_timeout": 1}}}}},
     "$.apis.default.event_transport.redis", "acknowledgment_timeout"),
    ({"apis": {"core_config": {"bogus": True}}}, "$.apis.core_config", "bogus"),
    ({"apis": {"default": {"rpc_transport": {"redis": {"bogus": 1}}}}}, "$.apis.default.rpc_transport.redis", "bogus"),
    ({"plugins": {"internal_state": {"bogus": 1}}}, "$.plugins.internal_state", "bogus"),
    ({"plugins": {"my_plugin": {}}}, "$.plugins", "my_plugin"),
    ({"bus": {"client": {}}}, "$.bus", "client"),  # not a Lightbus 1.1.2 key either
])
def test_unknown_keys_are_refused_naming_their_path(tree, path, needle):
    with pytest.raises(ConfigurationError) as excinfo:
        load_config(environ={}, config=tree)
    lines = str(excinfo.value).splitlines()
    assert any(line.strip().startswith(f"{path}:") and needle in line for line in lines), str(excinfo.value)


@pytest.mark.parametrize("redis_settings, path, needle", [
    ({"batch_size": "10"}, "batch_size", "expected an integer, got str '10'"),
    ({"batch_size": 0}, "batch_size", "must be > 0"),
    ({"batch_size": True}, "batch_size", "expected an integer"),
    ({"max_stream_length": -1}, "max_stream_length", "must be >= 0"),
    ({"max_stream_length": 1.5}, "max_stream_length", "integer"),
    ({"stream_use": "sideways"}, "stream_use", "per_api"),
    ({"acknowledgement_timeout": "60s"}, "acknowledgement_timeout", "expected a number"),
    ({"url": "http://127.0.0.1:6379/0"}, "url", "scheme must be one of"),
    ({"url": "redis://user:hunter2@127.0.0.1:notaport/0"}, "url", "user:***@"),
    ({"serializer": "lightbus.serializers.BlobMessageSerializer"}, "serializer", "ByFieldMessageSerializer"),
    ({"connection_parameters": [1]}, "connection_parameters", "expected a mapping"),
])
def test_bad_event_transport_values_name_their_path(redis_settings, path, needle):
    with pytest.raises(ConfigurationError) as excinfo:
        load_config(environ={}, config={"apis": {"default": {"event_transport": {"redis": redis_settings}}}})
    message = str(excinfo.value)
    assert f"$.apis.default.event_transport.redis.{path}:" in message and needle in message, message
    assert "hunter2" not in message


@pytest.mark.parametrize("tree, path, needle", [
    ({"apis": {"default": {"event_fire_timeout": 0}}}, "$.apis.default.event_fire_timeout", "must be > 0"),
    ({"apis": {"default": {"validate": "yes"}}}, "$.apis.default.validate", "true/false"),
    ({"apis": {"default": {"validate": {"outgoing": "no"}}}}, "$.apis.default.validate", "outgoing"),
    ({"apis": {"default": {"event_transport": {"debug": {}}}}}, "$.apis.default.event_transport.debug",
     "no debug event transport"),
    ({"bus": {"log_level": "loud"}}, "$.bus.log_level", "debug, info"),
    ({"bus": {"schema": {"ttl": "60"}}}, "$.bus.schema.ttl", "integer"),
    ({"service_name": 5}, "$.service_name", "expected a string"),
    ({"apis": ["default"]}, "$.apis", "mapping"),
    ({"apis": {"bad name": {}}}, "$.apis.bad name", "Invalid API name"),
    ({"plugins": {"internal_state": {"enabled": "yes"}}}, "$.plugins.internal_state.enabled", "true or false"),
])
def test_other_bad_values_name_their_path(tree, path, needle):
    with pytest.raises(ConfigurationError) as excinfo:
        load_config(environ={}, config=tree)
    message = str(excinfo.value)
    assert f"{path}:" in message and needle in message, message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigurationError) as excinfo:
        load_config(environ={}, config={"bogus": 1, "apis": {"default": {"event_transport": {"redis": {
            "batch_size": "x", "stream_use": "nope"}}}}})
    message = str(excinfo.value)
    assert "$: unknown key(s) bogus" in message and ".batch_size:" in message


def test_file_problems(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("apis: [unclosed\n")
    with pytest.raises(ConfigurationError, match="bad.yaml: cannot parse"):
        load_config(bad, environ={})
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="top level must be a mapping"):
        load_config(listed, environ={})
    typo = tmp_path / "typo.toml"
    typo.write_text("[apis.default]\nevent_fire_timout = 3\n")
    with pytest.raises(ConfigurationError, match=r"\$\.apis\.default: unknown key\(s\) event_fire_timout"):
        lightbus_sync.create(config_file=typo)


def test_a_bad_url_in_the_environment_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("LIGHTBUS_REDIS_URL", "redis://u:hunter2@127.0.0.1:port/0")
    with pytest.raises(ConfigurationError) as excinfo:
        lightbus_sync.create()
    assert "event_transport.redis.url" in str(excinfo.value) and "hunter2" not in str(excinfo.value)


# --- the default service name --------------------------------------------------------------


def _run(cwd: Path, *args: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), environment.get("PYTHONPATH")) if p)
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                            env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


BUS_MODULE = "import lightbus_sync\nbus = lightbus_sync.create()\nprint('SERVICE', bus.service_name)\n"


def test_default_service_name_is_stable_and_comes_from_the_creating_module(tmp_path):
    (tmp_path / "auth_service").mkdir()
    (tmp_path / "auth_service" / "__init__.py").write_text("")
    (tmp_path / "auth_service" / "bus.py").write_text(BUS_MODULE)
    (tmp_path / "send_reminders.py").write_text(BUS_MODULE)
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "bus.py").write_text(BUS_MODULE)
    # a module of a package -> the package
    assert _run(tmp_path, "-c", "import auth_service.bus") == "SERVICE auth_service"
    assert _run(tmp_path, "-m", "auth_service.bus") == "SERVICE auth_service"
    # a script -> its stem
    assert _run(tmp_path, "send_reminders.py") == "SERVICE send_reminders"
    # a top-level `bus` module (lightbus-sync run imports `bus`) -> its directory; so is a script bus.py
    assert _run(tmp_path / "billing", "-c", "import bus") == "SERVICE billing"
    assert _run(tmp_path, "billing/bus.py") == "SERVICE billing"
    # stable: the same on every start
    assert _run(tmp_path, "send_reminders.py") == "SERVICE send_reminders"
