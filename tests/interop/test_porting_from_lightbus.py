"""Lightbus 1.x handler habits, moved to lightbus_sync: what carries over and what is
refused at ``listen()`` time (never silently at the first event).
See docs/coming-from-lightbus.md."""

from __future__ import annotations

import pytest

import lightbus_sync
from lightbus_sync import EventMessage, InvalidListener

import sync_defs  # noqa: F401  (defines interop.shared: work(n: int, hang_in: str))


@pytest.fixture
def bus(redis_url):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="porting", process_name="p1")
    yield bus
    bus.close()


def test_an_async_handler_is_refused_not_acked_unrun(bus):
    async def on_work(event_message, n, hang_in):  # fine in Lightbus, which awaits it
        pass

    with pytest.raises(InvalidListener, match="async function"):
        bus.interop.shared.work.listen(on_work, listener_name="worker")


def test_the_message_comes_first_when_named_event_message_or_annotated(bus):
    bus.interop.shared.work.listen(lambda event_message, n, hang_in: None, listener_name="by_name")

    def annotated(msg: EventMessage, n, hang_in):
        pass

    bus.interop.shared.work.listen(annotated, listener_name="by_annotation")
    bus.interop.shared.work.listen(lambda n, hang_in: None, listener_name="without_message")


def test_a_lightbus_style_first_parameter_with_another_name_is_refused_naming_it(bus):
    # Lightbus passes the message as the first positional argument whatever its name.
    def on_work(event, n, hang_in):
        pass

    with pytest.raises(InvalidListener, match="requires 'event'"):
        bus.interop.shared.work.listen(on_work, listener_name="worker")
