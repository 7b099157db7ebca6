"""Print the fault-injection tables at the end of the run; never leave processes behind."""

import pytest

from lightbus_sync.testing.redis_server import RedisServer

from .harness import RESULTS, format_table, stop_all_runners


@pytest.fixture
def server(tmp_path):
    """A private redis-server with an append-only file (a restart keeps its data)."""
    with RedisServer(directory=tmp_path / "redis", appendonly=True) as srv:
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
