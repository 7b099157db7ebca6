"""``fire_on_commit()``: fire an event when the surrounding Django transaction commits."""

from __future__ import annotations

from typing import Any, Optional, Union

from ...bus import EventClient
from ...event_lookup import event_client


def fire_on_commit(
    event: Union[str, "EventClient[Any]"], *, using: Optional[str] = None, robust: bool = False, **parameters: Any
) -> None:
    """Fire ``event`` with ``parameters`` once the transaction on ``using`` commits; never
    if it rolls back. Outside a transaction (autocommit) it fires at once.

    The call is checked now: a bad call raises here, inside the transaction. The write
    happens after the commit, so it can be lost: if the process dies between the commit
    and the ``XADD``, or Redis stays unreachable for ``event_fire_timeout`` (the error
    then reaches the code that committed, after the commit; with ``robust=True`` Django
    logs it instead). ``bus.outbox()`` has no such window.
    """
    from django.db import transaction

    from .project import project

    client = event_client(project.bus, event)
    client.encode(**parameters)  # every check fire() makes, while the caller can still roll back
    transaction.on_commit(lambda: client.fire(**parameters), using=using, robust=robust)
