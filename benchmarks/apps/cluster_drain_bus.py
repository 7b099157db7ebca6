"""Bus module for ``lightbus-sync run --bus benchmarks.apps.cluster_drain_bus``: one
no-op listener (``drain``) over the APIs named in ``$BENCH_CLUSTER_APIS`` (comma
separated; see cluster_apis). Used by the cluster_scale case."""

import os

import lightbus_sync

from benchmarks.apps.cluster_apis import define
from benchmarks.apps.definitions import BUS_CONFIG

NAMES = define(os.environ["BENCH_CLUSTER_APIS"].split(","))
bus = lightbus_sync.create(config=BUS_CONFIG)


def noop(username, email, is_admin):
    pass


bus.listen_many([bus.api(name).user_created for name in NAMES], noop, listener_name="drain", since="0")
