"""Replication-confirmed writes: ``WAIT`` (or ``WAITAOF``) after a pipeline of writes.

Redis replicates asynchronously: when a write returns, the entry may exist on the
primary only, and a failover in the next moment loses it. With ``min_replicas: N``
(``apis.<name>.event_transport.redis``) a pipeline of writes ends with one
``WAIT N timeout``, which returns how many replicas have acknowledged every write made
so far on that connection; fewer than N after ``min_replicas_timeout`` seconds raises
``ReplicationNotConfirmed`` naming the event ids. With ``min_replicas_fsync`` a
``WAITAOF 0 N timeout`` follows the ``WAIT`` (Redis 7.2+, Valkey 8+): the replicas have
also fsynced the writes to their append-only files. (``WAITAOF`` straight after the
writes is answered by replicas before their fsync, so it would wait for their next
once-a-second acknowledgement; after ``WAIT`` it is asked in a later round and is
answered at once. The call can then take up to twice ``min_replicas_timeout``.)
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
    def commands(self) -> list[tuple[Any, ...]]:
        """What ends a pipeline: ``WAIT``, then with ``fsync`` ``WAITAOF``."""
        wait: list[tuple[Any, ...]] = [("WAIT", self.replicas, self.timeout_ms)]
        if self.fsync:
            wait.append(("WAITAOF", 0, self.replicas, self.timeout_ms))
        return wait

    def add_to(self, pipe: Any) -> int:
        """Queue ``commands`` at the end of ``pipe``; return how many replies they add."""
        for command in self.commands:
            pipe.execute_command(*command)
        return len(self.commands)

    def confirmed(self, replies: Sequence[Any]) -> int:
        """Replicas that confirmed, from the replies to ``commands``."""
        if self.fsync:
            return int(replies[-1][1])
        return int(replies[-1])

    def check(self, replies: Sequence[Any], event_ids: Sequence[str], where: str,
              entry_ids: Sequence[str] = ()) -> None:
        """Raise ``ReplicationNotConfirmed`` unless ``replies`` (to ``commands``) count at
        least ``replicas`` replicas. ``where`` names the stream or the Redis;
        ``entry_ids`` the entries written."""
        confirmed = self.confirmed(replies)
        if confirmed >= self.replicas:
            return
        shown = ", ".join(event_ids[:5]) + (f" and {len(event_ids) - 5} more" if len(event_ids) > 5 else "")
        copies = "fsynced AOF copies" if self.fsync else "copies"
        raise ReplicationNotConfirmed(
            f"{where}: {confirmed} of min_replicas={self.replicas} replica(s) confirmed {copies} of event(s) "
            f"{shown} within min_replicas_timeout={self.timeout:g}s; the entry may exist on the primary only "
            f"(a failover now would lose it). Firing again with the same event id is safe for consumers "
            f"that de-duplicate",
            event_ids=tuple(event_ids), entry_ids=tuple(entry_ids), required=self.replicas, confirmed=confirmed,
        )
