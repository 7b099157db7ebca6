"""One config file for both: real Lightbus 1.1.2 and lightbus_sync load the same YAML
(tests/interop/lightbus_full.yaml: every Lightbus key) and read the same values.

Lightbus refuses unknown keys, so a shared file holds only Lightbus keys; lightbus_sync's
own settings go through ``create(config=...)`` (or a file only lightbus_sync reads).
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

import lightbus_sync
from lightbus_sync.config import load_config
from lightbus_sync.errors import ConfigurationError

from interop_harness import INTEROP_DIR, ProcessGroup
import sync_defs  # noqa: F401,E402  (defines interop.sync_types)

pytestmark = pytest.mark.timeout(300)

LIGHTBUS_VIEW = r"""
import json, sys
from lightbus.config import Config

config = Config.load_file(sys.argv[1])

def api(name):
    section = config.api(name)
    redis = section.event_transport.redis
    return {
        "validate": [section.validate.outgoing, section.validate.incoming],
        "strict_validation": section.strict_validation,
        "cast_values": section.cast_values,
        "event_fire_timeout": section.event_fire_timeout,
        "url": redis.url,
        "batch_size": redis.batch_size,
        "acknowledgement_timeout": redis.acknowledgement_timeout,
        "max_stream_length": redis.max_stream_length,
        "stream_use": redis.stream_use.value,
        "reclaim_batch_size": redis.reclaim_batch_size,
        "reclaim_interval": redis.reclaim_interval,
        "consumption_restart_delay": redis.consumption_restart_delay,
        "consumer_ttl": redis.consumer_ttl,
    }

bus = config.bus()
print(json.dumps({
    "service_name": config.service_name,
    "process_name": config.process_name,
    "log_level": bus.log_level.value,
    "schema": [bus.schema.ttl, bus.schema.human_readable, bus.schema.transport.redis.url],
    "default": api("default"),
    "interop.special": api("interop.special"),
}))
"""

#: Keys of the per-API section that the file sets (Lightbus gives omitted ones their
#: class defaults, lightbus_sync merges ``apis.default`` in: see docs/coming-from-lightbus.md).
SPECIAL_KEYS = ("validate", "strict_validation", "cast_values", "event_fire_timeout", "url", "batch_size",
                "acknowledgement_timeout", "max_stream_length", "stream_use")


def lightbus_sync_view(path: Path) -> dict:
    config = load_config(path, environ={})

    def api(name: str) -> dict:
        section = config.api(name)
        redis = section.redis
        return {
            "validate": [section.validate.outgoing, section.validate.incoming],
            "strict_validation": section.strict_validation,
            "cast_values": section.cast_values,
            "event_fire_timeout": section.event_fire_timeout,
            "url": redis.url,
            "batch_size": redis.batch_size,
            "acknowledgement_timeout": redis.acknowledgement_timeout,
            "max_stream_length": redis.max_stream_length,
            "stream_use": redis.stream_use,
            "reclaim_batch_size": redis.reclaim_batch_size,
            "reclaim_interval": redis.reclaim_interval,
            "consumption_restart_delay": redis.consumption_restart_delay,
            "consumer_ttl": redis.consumer_ttl,
        }

    schema = config.bus.schema
    return {
        "service_name": config.service_name,
        "process_name": config.process_name,
        "log_level": config.bus.log_level,
        "schema": [schema.ttl, schema.human_readable, schema.transport.redis.url],
        "default": api("default"),
        "interop.special": api("interop.special"),
    }


@pytest.fixture
def full_config(tmp_path: Path, redis_url: str) -> Path:
    text = string.Template((INTEROP_DIR / "lightbus_full.yaml").read_text()).substitute(redis_url=redis_url)
    path = tmp_path / "lightbus.yaml"
    path.write_text(text)
    return path


def test_both_load_one_file_with_every_lightbus_key_and_read_the_same_values(procs: ProcessGroup, full_config):
    theirs = json.loads(procs.run_lightbus_script("-c", LIGHTBUS_VIEW, str(full_config)).stdout)
    ours = json.loads(json.dumps(lightbus_sync_view(full_config)))
    assert theirs["default"]["stream_use"] == "per_event"  # the file's values, not defaults
    assert ours["service_name"] == theirs["service_name"] == "billing"
    assert ours["process_name"] == theirs["process_name"] == "billing-worker-1"
    assert ours["log_level"] == theirs["log_level"] == "warning"
    assert ours["schema"] == theirs["schema"]
    assert ours["default"] == theirs["default"]
    assert {k: ours["interop.special"][k] for k in SPECIAL_KEYS} == {
        k: theirs["interop.special"][k] for k in SPECIAL_KEYS
    }


def test_a_bus_created_from_the_shared_file_uses_its_values(full_config, redis_client):
    bus = lightbus_sync.create(config_file=full_config)
    try:
        assert (bus.service_name, bus.process_name) == ("billing", "billing-worker-1")
        bus.interop.sync_types.ping.fire()
    finally:
        bus.close()
    assert redis_client.exists("interop.sync_types.ping:stream")  # stream_use: per_event
    assert 80 < redis_client.ttl("schema:interop.sync_types") <= 90  # bus.schema.ttl: 90


def test_keys_only_lightbus_sync_knows_are_refused_by_lightbus(procs: ProcessGroup, full_config, tmp_path):
    """Why the shared file holds Lightbus keys only: lightbus_sync's own tuning (here
    ``block_ms``) makes Lightbus refuse the whole file; pass it with ``config=``."""
    text = full_config.read_text().replace("        consumer_ttl: 86400\n",
                                           "        consumer_ttl: 86400\n        block_ms: 200\n")
    extended = tmp_path / "extended.yaml"
    extended.write_text(text)
    result = procs.run_cli([procs.lightbus_python, "-c", LIGHTBUS_VIEW, str(extended)])
    assert result.returncode != 0 and "block_ms" in result.stderr
    ours = load_config(full_config, environ={},
                       config={"apis": {"default": {"event_transport": {"redis": {"block_ms": 200}}}}})
    assert ours.api("default").redis.block_ms == 200
    assert ours.api("default").redis.stream_use == "per_event"  # the file still applies


def test_both_refuse_an_unknown_key(procs: ProcessGroup, full_config, tmp_path):
    text = full_config.read_text().replace("acknowledgement_timeout: 45.5", "acknowledgment_timeout: 45.5")
    typo = tmp_path / "typo.yaml"
    typo.write_text(text)
    result = procs.run_cli([procs.lightbus_python, "-c", LIGHTBUS_VIEW, str(typo)])
    assert result.returncode != 0 and "acknowledgment_timeout" in result.stderr
    with pytest.raises(ConfigurationError, match="acknowledgment_timeout"):
        load_config(typo, environ={})
