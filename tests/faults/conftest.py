"""Print the fault-injection tables at the end of the run; never leave processes behind."""

import pytest

from lightbus_sync.testing.redis_server import RedisServer

from .harness import FAILOVER_HEADER, FAILOVER_RESULTS, RESULTS, format_table, stop_all_runners


@pytest.fixture
def server(tmp_path):
    """A private redis-server with an append-only file (a restart keeps its data)."""
    with RedisServer(directory=tmp_path / "redis", appendonly=True) as srv:
        if not srv.is_running():
            srv.start()
        yield srv


@pytest.fixture
def server7(tmp_path):
    """As ``server``, Redis 7 or later (``XINFO STREAM`` counts every entry ever added,
    which the outbox scenarios compare with the distinct events, as runners trim)."""
    from lightbus_sync.testing.redis_server import find_redis_server_at_least

    with RedisServer(executable=find_redis_server_at_least(7), directory=tmp_path / "redis",
                     appendonly=True) as srv:
        if not srv.is_running():
            srv.start()
        yield srv


@pytest.fixture(autouse=True)
def _no_runner_left_behind():
    yield
    stop_all_runners()


@pytest.fixture(autouse=True)
def _no_outbox_process_left_behind():
    from .outbox_harness import stop_all_processes

    yield
    stop_all_processes()


def pytest_terminal_summary(terminalreporter):
    from .outbox_harness import OUTBOX_RESULTS, format_outbox_table

    if RESULTS:
        terminalreporter.section("fault injection: what the runner survived")
        terminalreporter.write_line(format_table(RESULTS))
    if OUTBOX_RESULTS:
        terminalreporter.section("fault injection: the outbox and the inbox")
        terminalreporter.write_line(format_outbox_table(OUTBOX_RESULTS))
    if FAILOVER_RESULTS:
        terminalreporter.section("failover: primary, two replicas, three sentinels")
        terminalreporter.write_line(format_table(FAILOVER_RESULTS, FAILOVER_HEADER))
