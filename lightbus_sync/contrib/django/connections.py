"""Django's database connections on the runner's worker threads.

Django opens a connection per thread and per database, and a request closes the ones
that are broken or past ``CONN_MAX_AGE`` before and after it runs
(``close_old_connections()``, on ``request_started``/``request_finished``). No request
surrounds a handler call on a runner's worker thread, so this observer does the same
around each handler call: a connection killed while the thread sat idle (a database
restart, an idle timeout) is dropped before the next handler uses it, and only the
handlers running at the time of the failure see it (they fail and are retried).
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Iterator

from ...message import EventMessage
from ...observers import DeliveryInfo, Observer


def close_old_connections() -> None:
    """Django's ``close_old_connections()``, sparing connections inside an atomic block:
    they belong to the code that opened it (a test's transaction, when a test runs the
    handlers in memory: closing it would break the test, as Django's test client knows)."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


@contextlib.contextmanager
def _old_connections_closed() -> Iterator[None]:
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


class DjangoConnections(Observer):
    """``close_old_connections()`` before and after each handler call, on its thread."""

    def handling(self, delivery: DeliveryInfo, message: EventMessage) -> ContextManager[Any]:
        return _old_connections_closed()
