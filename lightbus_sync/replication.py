"""Replication-confirmed writes: ``WAIT`` (or ``WAITAOF``) after a pipeline of writes.

Redis replicates asynchronously: when a write returns, the entry may exist on the
primary only, and a failover in the next moment loses it. With ``min_replicas: N``
(``apis.<name>.event_transport.redis``) a pipeline of writes ends with one
``WAIT N timeout``, which returns how many replicas have acknowledged every write made
so far on that connection; fewer than N after ``min_replicas_timeout`` seconds raises
``ReplicationNotConfirmed`` naming the event ids. With ``min_replicas_fsync`` it is
``WAITAOF 0 N timeout`` instead (Redis 7.2+, Valkey 8+): the replicas have also
fsynced the writes to their append-only files.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs

from .errors import ReplicationNotConfirmed


@attrs.frozen
class ReplicaWait:
    """Wait for ``replicas`` replicas (> 0) to hold a pipeline's writes, at most
    ``timeout`` seconds; with ``fsync``, to have them in their AOF (``WAITAOF``)."""

    replicas: int
    timeout: float
    fsync: bool = False

    @property
    def timeout_ms(self) -> int:
        return max(int(self.timeout * 1000), 1)

    @property
    def command(self) -> tuple[Any, ...]:
        if self.fsync:
            return ("WAITAOF", 0, self.replicas, self.timeout_ms)
        return ("WAIT", self.replicas, self.timeout_ms)

    def add_to(self, pipe: Any) -> None:
        """Queue the wait as the last command of ``pipe``."""
        pipe.execute_command(*self.command)

    def confirmed(self, reply: Any) -> int:
        """Replicas that confirmed, from the reply of ``command``."""
        if self.fsync:
            return int(reply[1])
        return int(reply)

    def check(self, reply: Any, event_ids: Sequence[str], where: str) -> None:
        """Raise ``ReplicationNotConfirmed`` unless ``reply`` (to ``command``) counts at
        least ``replicas`` replicas. ``where`` names the stream or the Redis."""
        confirmed = self.confirmed(reply)
        if confirmed >= self.replicas:
            return
        shown = ", ".join(event_ids[:5]) + (f" and {len(event_ids) - 5} more" if len(event_ids) > 5 else "")
        copies = "fsynced AOF copies" if self.fsync else "copies"
        raise ReplicationNotConfirmed(
            f"{where}: {confirmed} of min_replicas={self.replicas} replica(s) confirmed {copies} of event(s) "
            f"{shown} within min_replicas_timeout={self.timeout:g}s; the entry may exist on the primary only "
            f"(a failover now would lose it). Firing again with the same event id is safe for consumers "
            f"that de-duplicate",
            event_ids=tuple(event_ids), required=self.replicas, confirmed=confirmed,
        )
