"""No password in reprs or printed output: the config's repr, the demo's Redis line."""

from __future__ import annotations

from lightbus_sync.config import load_config
from lightbus_sync.demo import run_demo

SECRET = "hunter2-secret"


def test_the_config_repr_has_no_password():
    config = load_config(redis_url=f"redis://app:{SECRET}@127.0.0.1:6390/0", config={
        "apis": {"default": {"event_transport": {"redis": {"connection_parameters": {"password": SECRET}}}},
                 "billing": {"rpc_transport": {"redis": {"url": f"redis://:{SECRET}@127.0.0.1:6390/1"}}}},
    })
    text = repr(config) + str(config)
    assert SECRET not in text
    assert "redis://app:***@127.0.0.1:6390/0" in text
    assert config.api("default").redis.url == f"redis://app:{SECRET}@127.0.0.1:6390/0"  # the value itself is kept


def test_the_demo_prints_the_url_without_its_password(fresh_redis_server):
    with fresh_redis_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "demo", "on", f">{SECRET}", "~*", "&*", "+@all")
    lines: list[str] = []
    url = f"redis://demo:{SECRET}@127.0.0.1:{fresh_redis_server.port}/0"
    assert run_demo(url, count=2, out=lines.append) == 0
    output = "\n".join(lines)
    assert SECRET not in output
    assert f"Redis: redis://demo:***@127.0.0.1:{fresh_redis_server.port}/0" in output


def test_a_sentinel_url_in_the_config_repr_shows_neither_password():
    url = (f"redis+sentinel://app:{SECRET}@127.0.0.1:26379,127.0.0.1:26380/mymaster"
           f"?sentinel_username=watcher&sentinel_password={SECRET}-2&ssl=true&ssl_password={SECRET}-3")
    config = load_config(redis_url=url)
    text = repr(config) + str(config)
    assert SECRET not in text
    assert "redis+sentinel://app:***@127.0.0.1:26379,127.0.0.1:26380/mymaster?sentinel_username=watcher" in text
    assert "sentinel_password=***" in text and "ssl_password=***" in text
