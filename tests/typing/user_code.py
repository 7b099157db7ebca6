"""Code written as a user writes it, from the README and docs. ``tests/test_typing.py``
type-checks it with ``mypy --strict`` (no errors, no ignores) and runs it against the
suite's Redis (``LIGHTBUS_REDIS_URL``)."""

from __future__ import annotations

import datetime

import lightbus_sync
import lightbus_sync as lightbus
from lightbus_sync import Api, Event, EventMessage, LightbusError, Parameter
from lightbus_sync.testing import BusRecorder, deliver, record_events

from billing_api import BillingApi


class AuthApi(Api):
    user_created = Event(parameters=("username", "email"))
    permission_changed = Event(parameters=(
        Parameter("username", str),
        Parameter("is_admin", bool, default=False),
    ))

    class Meta:
        name = "my_company.auth"


bus = lightbus.create()

# Dynamic access, as in the README: names looked up at run time.
message: EventMessage = bus.my_company.auth.user_created.fire(username="adam", email="adam@example.com")
print(message.id, message.stream_id, message.kwargs["username"])
bus.api("my_company.auth").permission_changed.fire(username="adam", is_admin=True)
bus.my_company.auth.user_created.fire_many([{"username": "a", "email": "a@example.com"}])


def handle_created(username: str, email: str) -> None:
    print(username, email)


def handle_with_message(event_message: EventMessage, username: str, email: str) -> None:
    print(event_message.canonical_name, username)


bus.my_company.auth.user_created.listen(handle_created, listener_name="store_user")
bus.listen_many([bus.api("my_company.auth").event("user_created")], handle_with_message, listener_name="both")


@bus.on_start
def warm_up() -> None:
    print("starting")


try:
    bus.my_company.auth.user_craeted
except LightbusError as error:
    print(f"{type(error).__name__}: {error}")

# The typed path: events reached through the Api class.
billing = bus.api(BillingApi)
paid: EventMessage = billing.invoice_paid.fire(
    invoice_id=7, amount=12.5, paid_at=datetime.datetime.now(datetime.timezone.utc))
billing.invoice_paid.fire(invoice_id=8, amount=3, paid_at=datetime.datetime.now(datetime.timezone.utc), note="cash")
bus.api(AuthApi).user_created.fire(username="eve", email="eve@example.com")  # Lightbus form: any keywords
print(BillingApi.invoice_paid.parameters, BillingApi.definition.events["invoice_paid"].parameter_names)


async def fire_from_asyncio() -> EventMessage:
    return await billing.invoice_paid.fire_async(
        invoice_id=9, amount=1.0, paid_at=datetime.datetime.now(datetime.timezone.utc))


# Listening inside an app.
listener = bus.start_listener_thread()
listener.wait_until_ready(10)
listener.stop(timeout=10)
with bus.listening(threads=4) as runner:
    runner.wait_until_ready(10)

# Test helpers.
with record_events(bus) as recorder:
    bus.my_company.auth.user_created.fire(username="zoe", email="zoe@example.com")
    recorder.assert_fired_once("my_company.auth.user_created", username="zoe")
assert isinstance(recorder, BusRecorder)
deliver(bus, "my_company.auth.user_created", username="zoe", email="zoe@example.com")
print(lightbus_sync.__version__)
bus.close()
