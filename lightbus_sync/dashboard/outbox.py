"""The streams page's outbox-backlog column: an optional hook.

A hook is a callable taking nothing and returning ``{stream: OutboxBacklog}``: how
many outbox rows wait to be written to each stream, and how old the oldest is. The
column shows "-" for a stream the hook does not name, and is left out when there is
no hook. ``find_outbox_backlog(source)`` gives the hook of the
``lightbus_sync.outbox`` module, when it is installed and its ``stream_backlog(source)``
function exists; else None.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Optional

import attrs


@attrs.frozen
class OutboxBacklog:
    waiting: int
    oldest_age: Optional[float]  # seconds; None when nothing waits or unknown


BacklogHook = Callable[[], Mapping[str, OutboxBacklog]]


def find_outbox_backlog(source: Any) -> Optional[BacklogHook]:
    try:
        module = importlib.import_module("lightbus_sync.outbox")
    except ImportError:
        return None
    backlog = getattr(module, "stream_backlog", None)
    if not callable(backlog):
        return None

    def hook() -> Mapping[str, OutboxBacklog]:
        return {
            stream: item if isinstance(item, OutboxBacklog) else OutboxBacklog(*item)
            for stream, item in backlog(source).items()
        }

    return hook
