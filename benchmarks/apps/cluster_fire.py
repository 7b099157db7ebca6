"""``python -m benchmarks.apps.cluster_fire URL COUNT BATCH API [API...]``: fire COUNT
``user_created`` events with ``fire_many`` batches of BATCH, round-robin over the APIs,
then print the seconds it took (from the first fire) on stdout. Used by the
cluster_scale case, several at once."""

from __future__ import annotations

import sys
import time

import lightbus_sync
from benchmarks.apps.cluster_apis import define
from benchmarks.apps.definitions import BUS_CONFIG, KWARGS


def main(argv: list[str]) -> None:
    url, count, batch, names = argv[0], int(argv[1]), int(argv[2]), define(argv[3:])
    bus = lightbus_sync.create(redis_url=url, service_name="bench-fire", process_name="bench-fire",
                               config=BUS_CONFIG)
    events = [bus.api(name).user_created for name in names]
    calls = [dict(KWARGS)] * batch
    events[0].fire(**KWARGS)  # connect, publish the schema: not timed
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()  # go
    started = time.perf_counter()
    for index in range(count // batch):
        events[index % len(events)].fire_many(calls)
    sys.stdout.write(f"{time.perf_counter() - started}\n")
    sys.stdout.flush()
    bus.close()


if __name__ == "__main__":
    main(sys.argv[1:])
