"""The example shop without ``LIGHTBUS_SYNC_OUTBOX`` (tests only)."""

from shop.settings import *  # noqa: F401,F403

LIGHTBUS_SYNC_OUTBOX = None
