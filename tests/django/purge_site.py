"""The example shop whose inbox purges after every handled event (tests only: the
runner's purge turn, ``PURGE_INTERVAL``, is ten minutes)."""

import lightbus_sync.inbox
from shop.settings import *  # noqa: F401,F403

lightbus_sync.inbox.PURGE_INTERVAL = 0.0
