"""Test helpers for Django projects: what ``bus.outbox()`` wrote in the test's own
transaction (``django.test.TestCase`` and pytest-django's ``db`` never commit, so no
relay sees those rows)."""

from __future__ import annotations

import json
from typing import Optional

from ...message import EventMessage
from ...wire import decode_entry

__all__ = ["outbox_events"]


def outbox_events(using: str = "default", event: Optional[str] = None) -> list[EventMessage]:
    """The events in database ``using``'s outbox table not relayed yet, oldest first, as
    ``EventMessage`` s with their parameters as sent (JSON values, ``stream_id`` None);
    only those of ``event`` (``"api.event"``) if given."""
    from .models import OutboxEntry

    messages = []
    for row in OutboxEntry.objects.using(using).order_by("id"):
        flat = json.loads(row.fields)  # [name, value, name, value, ...] in wire order
        fields = {flat[i].encode(): flat[i + 1].encode() for i in range(0, len(flat), 2)}
        raw = decode_entry(fields)
        if event is not None and f"{raw.api_name}.{raw.event_name}" != event:
            continue
        messages.append(EventMessage(raw.id, raw.api_name, raw.event_name, raw.version, raw.parameters,
                                     row.stream, None))
    return messages
