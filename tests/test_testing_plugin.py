"""The pytest plugin (entry point ``pytest11: lightbus_sync``): its fixtures work in a
user's project, and a project's own fixtures of the same names win over them (as ours
do in this suite: tests/conftest.py defines ``redis_server``)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lightbus_sync.testing import RedisServer


def test_the_plugin_is_registered_and_loaded_here(request: pytest.FixtureRequest, redis_server):
    entry_points = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "lightbus_sync"]
    assert [e.value for e in entry_points] == ["lightbus_sync.testing.pytest_plugin"]
    plugin = request.config.pluginmanager.get_plugin("lightbus_sync")
    assert plugin is not None and plugin.__name__ == "lightbus_sync.testing.pytest_plugin"
    # Our conftest's session server, not the plugin's: both are RedisServers, but only
    # conftest's fixture is the one defined in tests/conftest.py.
    manager = request._fixturemanager  # no public API tells where a fixture was defined
    try:
        definitions = manager.getfixturedefs("redis_server", request.node)  # pytest >= 8.1
    except (TypeError, AttributeError):
        definitions = manager.getfixturedefs("redis_server", request.node.nodeid)
    assert Path(definitions[-1].func.__code__.co_filename).name == "conftest.py"
    assert isinstance(redis_server, RedisServer)


def run_pytest(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTBUS_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=str(project), env=env, capture_output=True, text=True, timeout=timeout,
    )


USER_BUS = '''
import lightbus_sync
from lightbus_sync import Api, Event, Parameter


class ShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("total", float)))

    class Meta:
        name = "plugin_shop.orders"


bus = lightbus_sync.create(service_name="shop", redis_url="redis://127.0.0.1:1/0",
                           config={"apis": {"default": {"event_fire_timeout": 0.2}}})


def place_order(order_id, total):
    bus.plugin_shop.orders.order_placed.fire(order_id=order_id, total=total)
'''

USER_TESTS = '''
import pytest
import redis

import lightbus_sync
from lightbus_sync.testing import BusRecorder, RedisServer

from bus import bus, place_order


def test_recorder_records_the_default_bus_module(lightbus_recorder, lightbus_bus):
    assert lightbus_bus is bus and isinstance(lightbus_recorder, BusRecorder) and lightbus_recorder.active
    place_order(7, 12.5)
    lightbus_recorder.assert_fired_once("plugin_shop.orders.order_placed", order_id=7, total=12.5)


def test_recording_ends_with_the_test():
    with pytest.raises(lightbus_sync.BusUnavailable):
        place_order(8, 1.0)


def test_redis_server_is_private_and_real(lightbus_redis_server):
    redis_server = lightbus_redis_server
    assert isinstance(redis_server, RedisServer)
    assert redis_server.host == "127.0.0.1" and redis_server.port != 6379
    redis_server.flushall()
    client = redis_server.client()
    assert client.info("server")["process_id"] == redis_server.pid
    other = lightbus_sync.create(redis_url=redis_server.url, service_name="shop2")
    try:
        other.plugin_shop.orders.order_placed.fire(order_id=1, total=2.0)
    finally:
        other.close()
    assert client.xlen("plugin_shop.orders.*:stream") == 1
    client.close()
'''


def test_fixtures_work_in_a_users_project(tmp_path: Path):
    (tmp_path / "bus.py").write_text(USER_BUS)
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_a_projects_own_fixtures_override_the_plugins(tmp_path: Path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent('''
        import pytest
        import lightbus_sync


        @pytest.fixture(scope="session")
        def lightbus_redis_server():
            return "the project's own redis_server"


        @pytest.fixture
        def lightbus_bus():
            return lightbus_sync.create(service_name="mine", redis_url="redis://127.0.0.1:1/0")
    '''))
    (tmp_path / "test_override.py").write_text(textwrap.dedent('''
        def test_override(lightbus_redis_server, lightbus_recorder, lightbus_bus):
            assert lightbus_redis_server == "the project's own redis_server"
            assert lightbus_recorder.bus is lightbus_bus and lightbus_bus.service_name == "mine"
    '''))
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_missing_bus_module_is_a_clear_failure(tmp_path: Path):
    (tmp_path / "test_nobus.py").write_text("def test_it(lightbus_recorder):\n    pass\n")
    result = run_pytest(tmp_path)
    assert result.returncode == 1
    assert "cannot import the bus module" in result.stdout and "lightbus_bus" in result.stdout


def test_the_old_fixture_names_are_deprecated_aliases(tmp_path: Path):
    (tmp_path / "bus.py").write_text(USER_BUS)
    (tmp_path / "test_old_names.py").write_text(textwrap.dedent('''
        from lightbus_sync.testing import BusRecorder, RedisServer


        def test_old_names(bus_recorder, redis_server, lightbus_recorder, lightbus_redis_server):
            assert bus_recorder is lightbus_recorder and isinstance(bus_recorder, BusRecorder)
            assert redis_server is lightbus_redis_server and isinstance(redis_server, RedisServer)
    '''))
    result = run_pytest(tmp_path, "-W", "always::DeprecationWarning")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "the 'bus_recorder' fixture is deprecated; use 'lightbus_recorder'" in result.stdout
    assert "the 'redis_server' fixture is deprecated; use 'lightbus_redis_server'" in result.stdout


def test_loading_the_plugin_imports_nothing_heavy():
    """pytest loads the plugin in every project that has the package installed: it must
    not import the package's modules (nor redis-py) until a fixture runs."""
    code = (
        "import sys, pytest; import lightbus_sync.testing.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith(('lightbus_sync', 'redis', 'cattrs', 'attrs'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "['lightbus_sync',", "'lightbus_sync._lazy',", "'lightbus_sync.testing',",
        "'lightbus_sync.testing.pytest_plugin']"]


def test_the_in_memory_fixture_runs_the_listeners_and_reaches_no_redis(tmp_path: Path):
    (tmp_path / "bus.py").write_text(USER_BUS + textwrap.dedent('''
        shipped = []


        def ship(order_id, total):
            shipped.append(order_id)


        bus.plugin_shop.orders.order_placed.listen(ship, listener_name="ship")
    '''))
    (tmp_path / "test_memory.py").write_text(textwrap.dedent('''
        from lightbus_sync.testing import InMemoryBroker

        import bus


        def test_in_memory(lightbus_in_memory):
            assert isinstance(lightbus_in_memory, InMemoryBroker) and lightbus_in_memory.active
            bus.place_order(3, 9.5)  # Redis at 127.0.0.1:1 would refuse it
            assert bus.shipped == [3]
            assert [m.kwargs for m in lightbus_in_memory.fired()] == [{"order_id": 3, "total": 9.5}]
    '''))
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
