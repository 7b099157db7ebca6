"""Print the fault-injection table at the end of the run."""

from .harness import RESULTS, format_table


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        terminalreporter.section("fault injection: what the runner survived")
        terminalreporter.write_line(format_table(RESULTS))
