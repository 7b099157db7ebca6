"""Stream upkeep for a runner: report entries lost to its groups, then trim.

``StreamUpkeep.run`` goes over the streams a runner reads; for each (at most once per
``trim_interval`` seconds): it reads the loss of the runner's own groups
(``loss.detect_loss``) and reports what is new (an ERROR line, then ``on_lost``), and
then trims the stream to its trim point (``trimming.Trimmer``). Losses are read before
trimming, and before the runner's first read, so a gap left while the service was down
is seen before reading moves past it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Mapping, Optional

from .loss import GroupLoss, LossTracker, detect_loss
from .trimming import Trimmer

logger = logging.getLogger("lightbus_sync.runner")


def describe_loss(loss: GroupLoss) -> str:
    """``12 entries`` / ``at least 1 entry``: a loss's count for messages."""
    count = f"{loss.lost} entr{'y' if loss.lost == 1 else 'ies'}"
    return count if loss.exact else f"at least {count}"


class StreamUpkeep:
    """Loss reports and trimming for one transport's streams.

    ``groups``: stream -> the runner's consumer groups on it. ``trim``: False to only
    report losses (a stream this runner must not trim). ``on_lost(loss)`` is called for
    each new loss, after its ERROR line; it must not raise (exceptions are logged).
    """

    def __init__(
        self, transport: Any, groups: Mapping[str, Iterable[str]], *, trimmer: Optional[Trimmer],
        on_lost: Callable[[GroupLoss], None], interval: float, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._groups = {stream: frozenset(names) for stream, names in groups.items()}
        self._trimmer = trimmer
        self._on_lost = on_lost
        self._interval = interval
        self._clock = clock
        self._tracker = LossTracker()
        self._last: dict[str, float] = {}

    def run(self, *, force: bool = False) -> list[GroupLoss]:
        """One pass over the streams due (every stream with ``force``): the new losses.
        Redis errors propagate (the caller retries on its next pass)."""
        now = self._clock()
        found: list[GroupLoss] = []
        for stream, groups in self._groups.items():
            last = self._last.get(stream)
            if not force and last is not None and now - last < self._interval:
                continue
            self._last[stream] = now
            readings = [loss for name, loss in detect_loss(self._transport, stream).items() if name in groups]
            for loss in self._tracker.new_losses(readings):
                self._report(loss)
                found.append(loss)
            if self._trimmer is not None:
                self._trimmer.trim(stream)
        return found

    def _report(self, loss: GroupLoss) -> None:
        logger.error(
            "%s: consumer group %r lost %s: removed from the stream before the group read them "
            "(its last-delivered id %s, the stream's first entry %s); a hard cap (max_stream_length, "
            "a Lightbus producer's MAXLEN) or a trim past a stale group removed them",
            loss.stream, loss.group, describe_loss(loss), loss.last_delivered, loss.first_id or "none (empty)",
            extra={"group": loss.group, "stream": loss.stream, "lost": loss.lost},
        )
        try:
            self._on_lost(loss)
        except Exception:
            logger.exception("reporting the loss of %s on %s failed", loss.group, loss.stream)
