"""The example's bus: its API, the Flask extension, and a listener counting events.

The bus itself is created by ``lightbus.init_app(app)`` from the app's config (see
app.py); the listener below is registered on it then, before its thread starts.
"""

import threading

from lightbus_sync import Api, Event, Parameter
from lightbus_sync.contrib.flask import LightbusSync


class UsersApi(Api):
    user_created = Event(parameters=(Parameter("username", str), Parameter("email", str)))

    class Meta:
        name = "flask_example.users"


lightbus = LightbusSync()

_lock = threading.Lock()
_received: list[str] = []


@lightbus.listen("flask_example.users.user_created", listener_name="count_users")
def count_user(username: str, email: str) -> None:
    """Runs in the listener thread for every user_created event (at least once: a real
    handler would de-duplicate on the event id)."""
    with _lock:
        _received.append(username)


def received() -> list[str]:
    with _lock:
        return list(_received)
