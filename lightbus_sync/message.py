"""``EventMessage``: one event, as fired or as received."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import attrs


@attrs.frozen
class EventMessage:
    """An event on the bus.

    ``fire()`` returns one (``stream_id`` is the entry id Redis gave it); handlers that ask
    for it receive one (``delivery_count`` is the server's count: 1 on first delivery).
    ``id`` is the event's own id, kept across retries and redeliveries: de-duplicate on it.
    """

    id: str
    api_name: str
    event_name: str
    version: int
    kwargs: Mapping[str, Any]
    stream: Optional[str] = None
    stream_id: Optional[str] = None
    delivery_count: int = 0
    #: The W3C trace context (``traceparent``, ``tracestate``) the entry carried, if any.
    trace_context: Optional[Mapping[str, str]] = attrs.field(default=None, eq=False, repr=False)

    @property
    def canonical_name(self) -> str:
        """``api_name.event_name``, e.g. ``my_company.auth.user_created``."""
        return f"{self.api_name}.{self.event_name}"

    @property
    def native_id(self) -> Optional[str]:
        """The stream entry id (Lightbus's name for ``stream_id``)."""
        return self.stream_id
