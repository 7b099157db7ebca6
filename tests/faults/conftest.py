"""Print the fault-injection table at the end of the run; never leave runners behind."""

import pytest

from .harness import FAILOVER_HEADER, FAILOVER_RESULTS, RESULTS, format_table, stop_all_runners


@pytest.fixture(autouse=True)
def _no_runner_left_behind():
    yield
    stop_all_runners()


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        terminalreporter.section("fault injection: what the runner survived")
        terminalreporter.write_line(format_table(RESULTS))
    if FAILOVER_RESULTS:
        terminalreporter.section("failover: primary, two replicas, three sentinels")
        terminalreporter.write_line(format_table(FAILOVER_RESULTS, FAILOVER_HEADER))
