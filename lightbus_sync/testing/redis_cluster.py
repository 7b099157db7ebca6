"""A private, throwaway Redis Cluster for tests: real ``redis-server`` processes.

:class:`RedisCluster` starts ``masters * (1 + replicas)`` nodes (3 masters + 3 replicas
by default) with :class:`~lightbus_sync.testing.redis_server.RedisServer`, each on a
free 127.0.0.1 port whose cluster bus port (port + 10000) is free too, with
``--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000``.
It forms the cluster with ``redis-cli --cluster create ... --cluster-replicas 1
--cluster-yes`` (the ``redis-cli`` beside the ``redis-server`` binary, else the one on
``PATH``, else ``/usr/bin/redis-cli``) and returns once every node reports
``cluster_state:ok``, agrees on who serves all 16384 slots, and every replica is in
sync with its master.

Helpers for failure tests: :meth:`failover` (kill -9 a master and wait for its replica
to take over, then restart the old master as a replica; or a manual ``CLUSTER
FAILOVER``), :meth:`migrate_slot` (move
one slot, keys included, to another master: MOVED/ASK for clients while it happens),
:meth:`master_of_slot`. :meth:`cleanup` (or the context manager) stops every node and
removes their directories; the ``RedisServer`` atexit hook reaps any left behind.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Optional

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .redis_server import LOOPBACK, RedisServer, RedisServerError, RedisServerNotFound, find_redis_server

__all__ = ["RedisCluster", "find_redis_cli"]

#: Cluster settings every node gets (``--cluster-node-timeout`` in ms: how long a
#: silent master has before its replica takes over).
NODE_TIMEOUT_MS = 2000


def find_redis_cli(server_executable: str) -> str:
    """The ``redis-cli`` beside ``server_executable``, else the first on PATH (pyenv
    shims skipped), else ``/usr/bin/redis-cli``."""
    beside = Path(server_executable).with_name("redis-cli")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("redis-cli", path=directory) if directory else None
        if candidate:
            try:
                with open(candidate, "rb") as fh:
                    head = fh.read(1024)
            except OSError:
                continue
            if not (head.startswith(b"#!") and b"pyenv" in head):  # a pyenv shim
                return candidate
    if Path("/usr/bin/redis-cli").is_file():
        return "/usr/bin/redis-cli"
    raise RedisServerNotFound(
        f"no redis-cli found beside {server_executable} nor on PATH: it is needed to form a Redis Cluster"
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _pick_cluster_ports(count: int, taken: set[int]) -> list[int]:
    """``count`` ports p in [20000, 55000) with p and p + 10000 (the cluster bus) free."""
    ports: list[int] = []
    for _ in range(5000):
        port = random.randrange(20000, 55000)
        if port in taken or port + 10000 in taken or port in ports or port + 10000 in ports \
                or port - 10000 in ports or port == 6379:
            continue
        if _port_free(port) and _port_free(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RedisServerError("could not find free ports (and cluster bus ports) on 127.0.0.1")


def _cluster_state(client: redis.Redis) -> str:
    """``cluster_state`` from ``CLUSTER INFO`` (redis-py parses it into a dict)."""
    info = client.execute_command("CLUSTER INFO")
    if isinstance(info, dict):
        return str(info.get("cluster_state", ""))
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return ""


def _client(port: int, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis(host=LOOPBACK, port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


class RedisCluster:
    """A real Redis Cluster on 127.0.0.1 that tests fully control (see the module doc)."""

    def __init__(
        self,
        masters: int = 3,
        replicas_per_master: int = 1,
        executable: Optional[str] = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        if masters < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        self.executable = executable or find_redis_server()
        self.redis_cli = find_redis_cli(self.executable)
        self.masters_count = masters
        self.replicas_per_master = replicas_per_master
        self.startup_timeout = startup_timeout
        ports = _pick_cluster_ports(masters * (1 + replicas_per_master), set())
        self.nodes: list[RedisServer] = [
            RedisServer(
                port=port,
                executable=self.executable,
                extra_args=(
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                    *extra_args,
                ),
            )
            for port in ports
        ]
        self._started = False

    # -- addressing -------------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`` (every node: any of them
        is enough to discover the cluster, several survive one being down)."""
        return "redis+cluster://" + ",".join(f"{LOOPBACK}:{port}" for port in self.ports)

    def node(self, port: int) -> RedisServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def client(self, **kwargs: Any) -> "redis.cluster.RedisCluster":
        """A new ``redis.cluster.RedisCluster`` (bytes replies); the caller closes it."""
        from redis.cluster import ClusterNode, RedisCluster as ClusterClient

        return ClusterClient(startup_nodes=[ClusterNode(LOOPBACK, p) for p in self.ports if self.node(p).is_running()],
                             **kwargs)

    def node_client(self, port: int) -> redis.Redis:
        """A plain client of one node (no redirections followed)."""
        return _client(port)

    # -- topology ---------------------------------------------------------------------

    def _slots(self, port: int) -> list[tuple[int, int, int, list[int]]]:
        """``CLUSTER SLOTS`` as seen by one node: (first, last, master port, replica ports)."""
        with _client(port) as client:
            rows = client.execute_command("CLUSTER SLOTS")
        result = []
        for row in rows if isinstance(rows, list) else []:
            first, last, master, *replicas = row
            result.append((int(first), int(last), int(master[1]), [int(r[1]) for r in replicas]))
        return sorted(result)

    def masters(self) -> list[int]:
        """Ports of the masters serving slots (as a running node sees it), by first slot."""
        seen: list[int] = []
        for _, _, master, _ in self._slots(self._any_running_port()):
            if master not in seen:
                seen.append(master)
        return seen

    def replicas_of(self, master_port: int) -> list[int]:
        ports: list[int] = []
        for _, _, master, replicas in self._slots(self._any_running_port()):
            if master == master_port:
                ports += [r for r in replicas if r not in ports]
        return ports

    def master_of_slot(self, slot: int) -> int:
        for first, last, master, _ in self._slots(self._any_running_port()):
            if first <= slot <= last:
                return master
        raise RedisServerError(f"slot {slot} is not served")

    @staticmethod
    def key_slot(key: str) -> int:
        from redis.crc import key_slot

        return key_slot(key.encode())

    def master_of_key(self, key: str) -> int:
        return self.master_of_slot(self.key_slot(key))

    def _any_running_port(self) -> int:
        for node in self.nodes:
            if node.is_running() and not node.is_paused:
                return node.port
        raise RedisServerError("no node of the cluster is running")

    def node_id(self, port: int) -> str:
        with _client(port) as client:
            return str(client.execute_command("CLUSTER MYID").decode())

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> "RedisCluster":
        """Start the nodes, form the cluster, wait until it is healthy. Idempotent."""
        if self._started:
            return self
        try:
            for node in self.nodes:
                node.start()
            command = [self.redis_cli, "--cluster", "create",
                       *(f"{LOOPBACK}:{port}" for port in self.ports),
                       "--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"]
            result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                    stdin=subprocess.DEVNULL)
            if result.returncode != 0 or "[OK] All 16384 slots covered" not in result.stdout:
                raise RedisServerError(
                    f"redis-cli --cluster create failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-2000:]}"
                )
            self._started = True
            self.wait_healthy(self.startup_timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running node says ``cluster_state:ok``, they all agree on the
        slot map (all 16384 slots, ``masters`` masters each with its replicas), and every
        replica's link to its master is up."""
        deadline = time.monotonic() + timeout
        problem: Optional[str] = "not checked"
        while time.monotonic() < deadline:
            problem = self._health_problem()
            if problem is None:
                return
            time.sleep(0.1)
        raise RedisServerError(f"the cluster did not become healthy within {timeout:g}s: {problem}")

    def _health_problem(self) -> Optional[str]:
        running = [node for node in self.nodes if node.is_running() and not node.is_paused]
        maps = set()
        for node in running:
            try:
                with _client(node.port) as client:
                    if _cluster_state(client) != "ok":
                        return f"node {node.port}: cluster_state is not ok"
                    replication = client.info("replication")
            except (redis.RedisError, OSError) as exc:
                return f"node {node.port}: {type(exc).__name__}: {exc}"
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return f"replica {node.port}: link to its master is {replication.get('master_link_status')}"
            slots = self._slots(node.port)
            covered = sum(last - first + 1 for first, last, _, _ in slots)
            if covered != 16384:
                return f"node {node.port}: {covered} of 16384 slots served"
            maps.add(tuple((f, l, m, tuple(sorted(r))) for f, l, m, r in slots))
        if len(maps) != 1:
            return "the nodes do not agree on the slot map yet"
        (slot_map,) = maps
        masters = {m for _, _, m, _ in slot_map}
        if len(masters) != self.masters_count:
            return f"{len(masters)} masters serve slots, expected {self.masters_count}"
        for _, _, _, replicas in slot_map:
            if len([r for r in replicas if self.node(r).is_running()]) < self.replicas_per_master:
                return "a master is missing a replica in the slot map"
        return None

    def failover(self, master_port: int, *, kill: bool = True, on_killed: Optional[Callable[[], Any]] = None,
                 timeout: float = 30.0) -> int:
        """Fail over the shard of ``master_port``; return the new master's port.

        ``kill=True``: kill -9 the master, call ``on_killed()``, wait until one of its
        replicas serves its slots (after ``--cluster-node-timeout``), then restart the old
        master (it rejoins as a replica of the new one). ``kill=False``: a manual
        ``CLUSTER FAILOVER`` on a replica (the master hands over once the replica has all
        its writes; nothing is lost). Either way, returns once the cluster is healthy."""
        replicas = self.replicas_of(master_port)
        if not replicas:
            raise RedisServerError(f"master {master_port} has no replica to fail over to")
        slots = [(first, last) for first, last, master, _ in self._slots(master_port) if master == master_port]
        if kill:
            self.node(master_port).kill()
            if on_killed is not None:
                on_killed()
        else:
            with _client(replicas[0], 10.0) as replica:
                replica.execute_command("CLUSTER FAILOVER")
        deadline = time.monotonic() + timeout
        new_master = None
        while time.monotonic() < deadline:
            try:
                owner = {self.master_of_slot(first) for first, _ in slots}
            except (redis.RedisError, OSError, RedisServerError):
                owner = set()
            if len(owner) == 1 and next(iter(owner)) in replicas:
                new_master = next(iter(owner))
                break
            time.sleep(0.05)
        if new_master is None:
            raise RedisServerError(f"no replica of {master_port} took over within {timeout:g}s")
        if kill:
            self.node(master_port).start()
        self.wait_healthy(max(deadline - time.monotonic(), 5.0))
        return new_master

    def migrate_slot(self, slot: int, target_port: int, *, pause_between_keys: float = 0.0,
                     batch: int = 10) -> None:
        """Move ``slot`` and its keys to the master ``target_port``, as ``redis-cli
        --cluster reshard`` does: SETSLOT IMPORTING / MIGRATING, MIGRATE the keys (``batch``
        at a time, ``pause_between_keys`` between batches, so clients meet ASK), then
        SETSLOT NODE on every master. Clients then get MOVED."""
        source_port = self.master_of_slot(slot)
        if source_port == target_port:
            return
        source_id, target_id = self.node_id(source_port), self.node_id(target_port)
        with _client(source_port, 10.0) as source, _client(target_port, 10.0) as target:
            target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
            source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
            while True:
                keys = source.execute_command("CLUSTER GETKEYSINSLOT", slot, batch)
                if not keys:
                    break
                source.execute_command("MIGRATE", LOOPBACK, target_port, "", 0, 10000, "KEYS", *keys)
                if pause_between_keys:
                    time.sleep(pause_between_keys)
            for port in self.masters():
                with _client(port, 10.0) as client:
                    client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            views = set()
            for node in self.nodes:
                if node.is_running():
                    for first, last, master, _ in self._slots(node.port):
                        if first <= slot <= last:
                            views.add(master)
            if views == {target_port}:
                return
            time.sleep(0.1)
        raise RedisServerError(f"the nodes do not agree that slot {slot} moved to {target_port}")

    def flushall(self) -> None:
        """``FLUSHALL`` on every master (replicas follow)."""
        for port in self.masters():
            with _client(port, 10.0) as client:
                client.flushall()

    def cleanup(self) -> None:
        """Stop every node and remove their directories. Safe to repeat."""
        for node in self.nodes:
            node.cleanup()
        self._started = False

    def __enter__(self) -> "RedisCluster":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<RedisCluster {self.url} executable={self.executable!r}>"
