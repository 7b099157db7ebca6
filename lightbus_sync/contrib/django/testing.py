"""Test helpers for Django projects.

- ``in_memory()``: the project's bus in memory (``lightbus_sync.testing.in_memory``) for a
  block: fires run the listeners in the test's thread, nothing reaches Redis.
- ``InMemoryBusMixin``: the same for each test of a ``django.test.TestCase`` (or
  ``TransactionTestCase``, ``SimpleTestCase``), as ``self.lightbus``.
- With pytest, the plugin's ``lightbus_in_memory`` fixture does it (its ``lightbus_bus`` is
  the project's bus when this app is installed).
- ``outbox_events()``: what ``bus.outbox()`` wrote and no relay has taken yet.

While the bus is in memory (or recording, ``record_events``), what is fired in a
transaction reaches it when the transaction commits, as in production: a
``fire_on_commit()`` fires then, and ``bus.outbox()``'s rows are relayed into it and
deleted. ``django.test.TestCase`` never commits: wrap the code in
``self.captureOnCommitCallbacks(execute=True)`` (pytest-django:
``django_capture_on_commit_callbacks(execute=True)``) to run the commit's callbacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...message import EventMessage
from ...wire import decode_entry

if TYPE_CHECKING:
    from ...testing import InMemoryBroker

__all__ = ["InMemoryBusMixin", "in_memory", "outbox_events"]


def in_memory(*, eager: bool = True) -> InMemoryBroker:
    """The project's bus in memory while the returned broker is on (``with in_memory() as
    broker:``, or ``start()``/``stop()``); see ``lightbus_sync.testing.in_memory``."""
    from ...testing import InMemoryBroker  # through the package, whose in_memory stays the function
    from . import get_bus

    return InMemoryBroker(get_bus(), eager=eager)


class InMemoryBusMixin:
    """Each test runs with the project's bus in memory: ``self.lightbus`` is its
    ``InMemoryBroker`` (put first in the bases; a ``setUp`` of the test case calls
    ``super().setUp()``). ``lightbus_eager = False`` queues events until
    ``self.lightbus.drain()``."""

    lightbus_eager = True
    lightbus: InMemoryBroker

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.lightbus = in_memory(eager=self.lightbus_eager).start()
        self.addCleanup(self.lightbus.stop)  # type: ignore[attr-defined]


def outbox_events(using: str = "default", event: Optional[str] = None) -> list[EventMessage]:
    """The events in database ``using``'s outbox table not relayed yet, oldest first, as
    ``EventMessage`` s with their parameters as sent (JSON values, ``stream_id`` None);
    only those of ``event`` (``"api.event"``) if given."""
    from ...outbox.writer import decode_fields
    from .models import OutboxEntry

    messages = []
    for row in OutboxEntry.objects.using(using).order_by("id"):
        raw = decode_entry({name.encode(): value.encode() for name, value in decode_fields(row.fields).items()})
        if event is not None and f"{raw.api_name}.{raw.event_name}" != event:
            continue
        messages.append(EventMessage(raw.id, raw.api_name, raw.event_name, raw.version, raw.parameters,
                                     row.stream, None))
    return messages
