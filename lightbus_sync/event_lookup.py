"""Finding an event's client by its dotted name: ``'my_company.auth.user_created'``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from .bus import Bus, EventClient


def event_client(bus: "Bus", event: Union[str, "EventClient[...]"]) -> "EventClient[...]":
    """``bus.api('my_company.auth').event('user_created')`` from
    ``'my_company.auth.user_created'`` (an ``EventClient`` is returned as it is).

    Raises ``UnknownApi`` / ``UnknownEvent`` (with suggestions) for unknown names.
    """
    from .bus import EventClient

    if isinstance(event, EventClient):
        return event
    if not isinstance(event, str) or "." not in event:
        raise ValueError(f"expected an event name like 'auth.user_created', got {event!r}")
    api_name, _, event_name = event.rpartition(".")
    return bus.api(api_name).event(event_name)
