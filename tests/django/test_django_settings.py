"""``settings.LIGHTBUS_SYNC`` in fresh Django processes: the keys of a config file (or a
file's path), validated at start-up with errors naming the setting's key, under the
``LIGHTBUS_*`` environment variables as they rank over a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from django_processes import child_env

PROBE = """
import json, django
django.setup()
from lightbus_sync.contrib.django import bus
print(json.dumps({"service": bus.service_name, "process": bus.process_name,
                  "url": bus.config.api("default").redis.url,
                  "schema_url": bus.config.bus.schema.transport.redis.url,
                  "threads": bus.config.bus.runner.threads,
                  "batch_size": bus.config.api("payments").redis.batch_size}))
"""


def start(tmp_path: Path, setting: str, *, env: dict | None = None, package: str = "proj") -> subprocess.CompletedProcess:
    """A project ``<package>.settings`` holding ``LIGHTBUS_SYNC = <setting>``; django.setup()
    and the bus's effective settings as JSON."""
    (tmp_path / package).mkdir(exist_ok=True)
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "settings.py").write_text(
        'SECRET_KEY = "x"\nINSTALLED_APPS = ["lightbus_sync.contrib.django"]\n'
        f"LIGHTBUS_SYNC = {setting}\n"
    )
    extra = {"DJANGO_SETTINGS_MODULE": f"{package}.settings", **(env or {})}
    environment = child_env(extra)
    environment["PYTHONPATH"] += ":" + str(tmp_path)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=str(tmp_path), env=environment,
                          capture_output=True, text=True, timeout=60)


def effective(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


SETTING = """{
    "service_name": "billing",
    "bus": {"runner": {"threads": 3}},
    "apis": {"default": {"event_transport": {"redis": {"url": "redis://10.0.0.1:6379/0"}}},
             "payments": {"event_transport": {"redis": {"batch_size": 7}}}},
}"""


def test_the_setting_takes_the_keys_of_a_config_file(tmp_path):
    values = effective(start(tmp_path, SETTING))
    assert values["service"] == "billing"
    assert values["threads"] == 3 and values["batch_size"] == 7
    assert values["url"] == "redis://10.0.0.1:6379/0"


def test_the_environment_ranks_over_the_setting_as_over_a_file(tmp_path):
    values = effective(start(tmp_path, SETTING, env={
        "LIGHTBUS_REDIS_URL": "redis://127.0.0.1:6390/2", "LIGHTBUS_SERVICE_NAME": "billing-eu",
        "LIGHTBUS_PROCESS_NAME": "web-1",
    }))
    assert values["url"] == values["schema_url"] == "redis://127.0.0.1:6390/2"
    assert (values["service"], values["process"]) == ("billing-eu", "web-1")
    assert values["threads"] == 3  # the rest still from the setting


def test_a_path_names_a_config_file_and_lightbus_config_is_used_without_the_setting(tmp_path):
    (tmp_path / "bus.json").write_text(json.dumps({"service_name": "from-file", "bus": {"runner": {"threads": 5}}}))
    values = effective(start(tmp_path, repr(str(tmp_path / "bus.json"))))
    assert (values["service"], values["threads"]) == ("from-file", 5)
    (tmp_path / "env.json").write_text(json.dumps({"service_name": "from-env-file"}))
    values = effective(start(tmp_path, "None", env={"LIGHTBUS_CONFIG": str(tmp_path / "env.json")}))
    assert values["service"] == "from-env-file"


def test_without_a_service_name_the_settings_package_names_the_service(tmp_path):
    values = effective(start(tmp_path, "None", package="mysite"))
    assert values["service"] == "mysite"
    assert values["url"] == "redis://127.0.0.1:6379/0"


def failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1] + "\n" + result.stderr


def test_a_bad_value_is_refused_at_start_up_naming_the_key(tmp_path):
    text = failure(start(tmp_path, '{"apis": {"default": {"event_transport": {"redis": {"batch_size": "10"}}}}}'))
    assert "settings.LIGHTBUS_SYNC: config error(s)" in text
    assert "LIGHTBUS_SYNC.apis.default.event_transport.redis.batch_size: expected an integer, got str '10'" in text


def test_an_unknown_key_and_a_bad_url_are_each_named(tmp_path):
    text = failure(start(tmp_path, '{"servce_name": "x", "apis": {"default": {"event_transport": '
                                   '{"redis": {"url": "http://nope"}}}}}'))
    assert "LIGHTBUS_SYNC: unknown key(s) servce_name" in text
    assert "LIGHTBUS_SYNC.apis.default.event_transport.redis.url:" in text


def test_a_setting_that_is_neither_a_mapping_nor_a_path_is_refused(tmp_path):
    text = failure(start(tmp_path, "['service_name']"))
    assert "settings.LIGHTBUS_SYNC must be a mapping in the shape of a config file, or the path of one" in text


def test_a_missing_file_is_named(tmp_path):
    text = failure(start(tmp_path, repr(str(tmp_path / "missing.yaml"))))
    assert "settings.LIGHTBUS_SYNC" in text and "cannot read config file" in text and "missing.yaml" in text


def test_a_password_in_the_setting_does_not_reach_the_error(tmp_path):
    text = failure(start(tmp_path, '{"apis": {"default": {"event_transport": {"redis": '
                                   '{"url": "http://:s3cret-pw@127.0.0.1:6379/0"}}}}}'))
    assert "LIGHTBUS_SYNC.apis.default.event_transport.redis.url" in text
    assert "s3cret-pw" not in text
