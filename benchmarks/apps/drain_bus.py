"""Bus module for ``lightbus-sync run --bus benchmarks.apps.drain_bus``: one no-op
listener (``drain``) on bench_auth.user_created, reading from the start of the stream.

The Redis URL, service and process names come from the command line. Used by the
backlog_memory and scale_out cases.
"""

import lightbus_sync

from benchmarks.apps.definitions import BUS_CONFIG

bus = lightbus_sync.create(config=BUS_CONFIG)


def noop(username, email, is_admin):
    pass


bus.bench_auth.user_created.listen(noop, listener_name="drain", since="0")
