"""Operations: what an operator asks of a running bus.

- ``status``: streams, consumer groups, consumers, lag, pending and dead-letter counts,
  with thresholds for monitoring (``collect_status``, ``check_status``);
- ``inspect``: recent events of an API, decoded, and tailing new ones
  (``recent_events``, ``follow_events``);
- ``dead_letters``: list, show, replay (to the original consumer group only) and purge
  dead-lettered entries.

Each function takes a ``Bus`` or a ``RedisTransport`` as its source. The Redis commands
they send live in ``lightbus_sync.transport`` like every other. The ``lightbus-sync``
subcommands are in ``lightbus_sync.cli_ops``.
"""

from .dead_letters import (
    AmbiguousDeadLetter,
    DeadLetterRecord,
    DeadLetterNotFound,
    ReplayResult,
    get_dead_letter,
    list_dead_letters,
    purge,
    replay,
    replay_stream,
)
from .inspect import InspectedEvent, follow_events, recent_events
from .status import BusStatus, Problem, check_status, collect_status, render_status
from .streams import StreamTarget

__all__ = [
    "AmbiguousDeadLetter",
    "BusStatus",
    "DeadLetterRecord",
    "DeadLetterNotFound",
    "InspectedEvent",
    "Problem",
    "ReplayResult",
    "StreamTarget",
    "check_status",
    "collect_status",
    "follow_events",
    "get_dead_letter",
    "list_dead_letters",
    "purge",
    "recent_events",
    "render_status",
    "replay",
    "replay_stream",
]
