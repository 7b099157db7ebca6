"""A private, throwaway Redis Sentinel deployment for tests: real processes.

:class:`SentinelDeployment` starts a primary, ``replicas`` replicas (``--replicaof``
the primary) and ``sentinels`` sentinels (``redis-server <file> --sentinel``), each a
:class:`~lightbus_sync.testing.redis_server.RedisServer` on a free 127.0.0.1 port, the
sentinels monitoring the primary as ``service_name`` with a quorum of 2 and short
timeouts (``down-after-milliseconds`` 1000 unless ``down_after_ms`` says otherwise,
``failover-timeout`` 4000), so that a failover takes a few seconds. (A primary that
does not answer for longer than ``down_after_ms`` is failed over: that includes a
``CLIENT PAUSE``, since the sentinels' own ``PUBLISH`` is paused and their ``PING``
waits behind it.) :meth:`start` returns once every replica is in sync
and every sentinel knows every replica and every other sentinel.

Helpers for failover tests: :meth:`primary` (the server the sentinels name now),
:meth:`wait_for_new_primary` (after a kill, a pause or ``SENTINEL FAILOVER``:
seconds until every running sentinel names another primary and it has taken the
role), :meth:`failover` (``SENTINEL FAILOVER``). :meth:`cleanup` (or the context
manager) stops everything; the ``RedisServer`` atexit hook reaps what is left.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Any, Optional, Sequence, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .redis_server import LOOPBACK, RedisServer, RedisServerError, find_redis_server_at_least

__all__ = ["SentinelDeployment", "SentinelServer"]

#: How long a silent primary has before the sentinels take it for down (ms).
DOWN_AFTER_MS = 1000
#: ``failover-timeout`` (ms): also the least time between two failovers of a primary.
FAILOVER_TIMEOUT_MS = 4000


def _client(port: int, timeout: float = 1.0) -> redis.Redis:
    return redis.Redis(host=LOOPBACK, port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0), decode_responses=True)


class SentinelServer(RedisServer):
    """A ``redis-server --sentinel`` monitoring one primary; its config file (which the
    sentinel rewrites as it learns the topology) lives in its directory."""

    def __init__(self, service_name: str, primary_port: int, quorum: int = 2,
                 down_after_ms: int = DOWN_AFTER_MS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service_name = service_name
        self.config_path = self.directory / "sentinel.conf"
        self.config_path.write_text("\n".join([
            f"sentinel monitor {service_name} {LOOPBACK} {primary_port} {quorum}",
            f"sentinel down-after-milliseconds {service_name} {down_after_ms}",
            f"sentinel failover-timeout {service_name} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {service_name} 2",
            "",
        ]))

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}"

    def _command_line(self) -> list[str]:
        return [
            self.executable, str(self.config_path), "--sentinel",
            "--bind", LOOPBACK, "--port", str(self.port), "--dir", str(self.directory),
            "--daemonize", "no", "--logfile", str(self.log_path),
        ]

    def master_state(self) -> dict[str, Any]:
        """``SENTINEL MASTER <service_name>`` as a dict (decoded)."""
        with _client(self.port) as client:
            return cast("dict[str, Any]", client.sentinel_master(self.service_name))


class SentinelDeployment:
    """A primary, replicas and sentinels on 127.0.0.1 (see the module doc)."""

    def __init__(
        self,
        replicas: int = 2,
        sentinels: int = 3,
        service_name: str = "mymaster",
        executable: Optional[str] = None,
        appendonly: bool = False,
        directory: Optional[Path] = None,
        startup_timeout: float = 30.0,
        down_after_ms: int = DOWN_AFTER_MS,
    ) -> None:
        self.executable = executable or find_redis_server_at_least(7)
        self.service_name = service_name
        self.startup_timeout = startup_timeout
        base = Path(directory) if directory is not None else None
        data_args: Sequence[str] = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")

        def place(name: str) -> Optional[Path]:
            return base / name if base is not None else None

        self.primary_server = RedisServer(executable=self.executable, appendonly=appendonly,
                                          extra_args=data_args, directory=place("primary"))
        self.data_servers: list[RedisServer] = [self.primary_server] + [
            RedisServer(executable=self.executable, appendonly=appendonly, directory=place(f"replica-{i}"),
                        extra_args=(*data_args, "--replicaof", LOOPBACK, str(self.primary_server.port)))
            for i in range(replicas)
        ]
        self.sentinel_servers: list[SentinelServer] = [
            SentinelServer(service_name, self.primary_server.port, executable=self.executable,
                           down_after_ms=down_after_ms, directory=place(f"sentinel-{i}"))
            for i in range(sentinels)
        ]

    # -- addressing ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,.../<service_name>``."""
        hosts = ",".join(f"{LOOPBACK}:{s.port}" for s in self.sentinel_servers)
        return f"redis+sentinel://{hosts}/{self.service_name}"

    def server(self, port: int) -> RedisServer:
        for server in self.data_servers:
            if server.port == port:
                return server
        raise KeyError(port)

    def primary_port(self) -> int:
        """The primary's port as the first running sentinel that answers names it."""
        for sentinel in self.sentinel_servers:
            if not sentinel.is_running() or sentinel.is_paused:
                continue
            try:
                return int(sentinel.master_state()["port"])
            except (redis.ConnectionError, redis.TimeoutError):
                continue
        raise RedisServerError("no sentinel answers")

    def primary(self) -> RedisServer:
        return self.server(self.primary_port())

    def replicas(self) -> list[RedisServer]:
        """The data servers that are not the primary now."""
        primary = self.primary_port()
        return [s for s in self.data_servers if s.port != primary]

    def client(self, port: Optional[int] = None) -> redis.Redis:
        """A plain client (bytes replies) of one data server, the primary by default;
        the caller closes it."""
        return self.server(port or self.primary_port()).client()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> "SentinelDeployment":
        for server in [*self.data_servers, *self.sentinel_servers]:
            server.start()
        self.wait_healthy(self.startup_timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        """Wait until every running replica is in sync with the primary and every running
        sentinel knows the primary (up), every other running sentinel and every replica."""
        deadline = time.monotonic() + timeout
        last: Optional[str] = "nothing checked yet"
        while time.monotonic() < deadline:
            last = self._health_problem()
            if last is None:
                return
            time.sleep(0.1)
        raise RedisServerError(f"Sentinel deployment not healthy within {timeout:g}s: {last}")

    def _health_problem(self) -> Optional[str]:
        running_sentinels = [s for s in self.sentinel_servers if s.is_running() and not s.is_paused]
        try:
            primary = self.primary_port()
            with _client(primary) as client:
                info = client.info("replication")
            if info.get("role") != "master":
                return f"{primary} is not a primary yet"
            replicas = [s for s in self.data_servers if s.port != primary and s.is_running() and not s.is_paused]
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                      and v.get("state") == "online"]
            if len(online) < len(replicas):
                return f"{len(online)} of {len(replicas)} replicas online"
            for sentinel in running_sentinels:
                state = sentinel.master_state()
                if int(state["port"]) != primary or "s_down" in state["flags"] or "o_down" in state["flags"]:
                    return f"sentinel {sentinel.port}: {state['flags']} at {state['port']}"
                if int(state["num-slaves"]) < len(replicas):
                    return f"sentinel {sentinel.port} knows {state['num-slaves']} replicas"
                if int(state["num-other-sentinels"]) < len(running_sentinels) - 1:
                    return f"sentinel {sentinel.port} knows {state['num-other-sentinels']} other sentinels"
                with _client(sentinel.port) as client:
                    known = client.sentinel_slaves(self.service_name)
                if sum(1 for r in known if not r["is_sdown"]) < len(replicas):
                    return f"sentinel {sentinel.port}: a replica is down"
        except (redis.ConnectionError, redis.TimeoutError, RedisServerError, KeyError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def failover(self) -> None:
        """``SENTINEL FAILOVER <service_name>`` (a planned switch) on a running sentinel."""
        for sentinel in self.sentinel_servers:
            if sentinel.is_running() and not sentinel.is_paused:
                with _client(sentinel.port, timeout=5) as client:
                    client.execute_command("SENTINEL", "FAILOVER", self.service_name)
                return
        raise RedisServerError("no sentinel running")

    def wait_for_new_primary(self, old_port: int, timeout: float = 30.0) -> float:
        """Seconds (from now) until every running sentinel names a primary other than
        ``old_port`` and that server reports ``role:master``; raises on timeout."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            ports = set()
            try:
                for sentinel in self.sentinel_servers:
                    if sentinel.is_running() and not sentinel.is_paused:
                        ports.add(int(sentinel.master_state()["port"]))
                if len(ports) == 1 and old_port not in ports:
                    (port,) = ports
                    with _client(port) as client:
                        if client.info("replication").get("role") == "master":
                            return time.monotonic() - started
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            time.sleep(0.05)
        raise RedisServerError(f"no new primary within {timeout:g}s (the sentinels name {sorted(ports)})")

    def cleanup(self) -> None:
        for server in [*self.sentinel_servers, *self.data_servers]:
            server.cleanup()

    def __enter__(self) -> "SentinelDeployment":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<SentinelDeployment {self.url}>"
