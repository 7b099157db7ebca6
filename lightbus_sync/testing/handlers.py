"""Running listeners' handlers synchronously, without Redis: ``deliver()``.

::

    from lightbus_sync.testing import deliver

    def test_welcome_mail_is_sent():
        (delivery,) = deliver(bus, "auth.user_created", username="adam", email="adam@example.com")
        assert outbox == ["adam@example.com"]

``deliver`` builds the entry exactly as ``fire()`` would (the same checks, encoding and
outgoing validation: ``EventClient.encode``), decodes it exactly as the runner does
(``lightbus_sync.incoming.IncomingDecoder``: decoding, incoming schema validation, the
listener's casts), then calls the handler of every listener registered for that event,
in registration order, in the current thread. Whatever a handler raises propagates, as
does ``InvalidIncomingEvent`` for an event the runner would dead-letter.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import attrs

from ..incoming import IncomingDecoder
from ..message import EventMessage

if TYPE_CHECKING:
    from ..bus import Bus, EventClient

__all__ = ["Delivery", "deliver"]

_sequence = itertools.count()


@attrs.frozen
class Delivery:
    """What one listener did with a delivered event: the message its handler received
    and what the handler returned."""

    listener: str
    message: EventMessage
    result: Any


def deliver(
    bus: "Bus",
    event: Union[str, "EventClient"],
    /,
    *,
    listeners: Optional[Sequence[str]] = None,
    **parameters: Any,
) -> list[Delivery]:
    """Deliver one event, given as ``fire()`` would take it, to the handlers of ``bus``'s
    listeners for it; return one ``Delivery`` per handler called.

    ``event`` is ``'auth.user_created'`` or ``bus.auth.user_created``; ``listeners``
    limits delivery to the listeners of those names. Raises ``LookupError`` when no
    (selected) listener is registered for the event, since that is surely a test bug.
    """
    from ..event_lookup import event_client

    client = event_client(bus, event)
    fields = client.encode(**parameters).fields
    decoder = IncomingDecoder(bus.config.api, bus.schemas.validator)
    raw = decoder.decode({k.encode(): v.encode() for k, v in fields.items()})
    decoder.validate(raw)
    chosen = [
        listener for listener in bus.listeners
        if listener.binding_for(raw.api_name, raw.event_name) is not None
        and (listeners is None or listener.name in listeners)
    ]
    if not chosen:
        registered = ", ".join(f"{l.name} ({', '.join(f'{a}.{e}' for a, e in l.bindings)})" for l in bus.listeners)
        raise LookupError(
            f"no listener{' named ' + ', '.join(listeners) if listeners is not None else ''} is registered "
            f"for {client.canonical_name} on {bus!r}; registered: {registered or 'none'}"
        )
    stream_id = f"{int(time.time() * 1000)}-{next(_sequence)}"
    deliveries = []
    for listener in chosen:
        binding = listener.binding_for(raw.api_name, raw.event_name)
        kwargs = decoder.structure(raw, binding)
        message = EventMessage(raw.id, raw.api_name, raw.event_name, raw.version, kwargs, client.stream, stream_id, 1)
        deliveries.append(Delivery(listener.name, message, listener.call(message)))
    return deliveries
