"""A web dashboard of a bus: streams, consumer groups with lag over time, recent events
and dead letters (replay and purge with an action token).

``Dashboard`` is a WSGI app (mount it into Flask or Django with ``mount``);
``lightbus-sync dashboard`` serves it with waitress. Needs
``pip install 'lightbus_sync[dashboard]'`` to be served by the command.
"""

from .app import Dashboard, mount
from .outbox import OutboxBacklog
from .server import make_server

__all__ = ["Dashboard", "OutboxBacklog", "make_server", "mount"]
