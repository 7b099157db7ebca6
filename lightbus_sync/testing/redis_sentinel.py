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

With ``auth`` (a :class:`SentinelAuth`) the data servers and the sentinels require
passwords, or ACL users; with ``tls`` (:func:`~lightbus_sync.testing.tls.make_tls_files`)
every process speaks TLS only, replication and the sentinels' own connections
included, and with ``tls_auth_clients`` requires a client certificate. :attr:`url`
carries what a client needs; :meth:`url_with` changes parts of it (a wrong password).

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
from urllib.parse import quote

import attrs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .redis_server import LOOPBACK, RedisServer, RedisServerError, find_redis_server_at_least
from .tls import TlsFiles

__all__ = ["SentinelAuth", "SentinelDeployment", "SentinelServer"]

#: How long a silent primary has before the sentinels take it for down (ms).
DOWN_AFTER_MS = 1000
#: ``failover-timeout`` (ms): also the least time between two failovers of a primary.
FAILOVER_TIMEOUT_MS = 4000


def _client(server: RedisServer, timeout: float = 1.0) -> redis.Redis:
    """A decoding, non-retrying client of ``server`` (with its credentials and TLS)."""
    return redis.Redis(host=LOOPBACK, port=server.port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0), decode_responses=True, **server.connection_options)


#: What the data servers' ACL users may run (``auth.username`` set): the sentinels'
#: and the replicas' users as the Redis ACL documentation gives them.
SENTINEL_USER_RULES = ("allchannels", "+multi", "+slaveof", "+ping", "+exec", "+subscribe", "+config|rewrite",
                       "+role", "+publish", "+info", "+client|setname", "+client|kill", "+script|kill")
REPLICA_USER_RULES = ("+psync", "+replconf", "+ping")
#: What a client's ACL user on the sentinels needs to find the primary (and, for
#: ``lightbus-sync status``, to count the sentinels that answer).
SENTINEL_CLIENT_RULES = ("+ping", "+sentinel|masters", "+sentinel|get-master-addr-by-name", "+sentinel|slaves",
                         "+sentinel|replicas")


@attrs.frozen
class SentinelAuth:
    """Credentials of a :class:`SentinelDeployment`.

    ``password``: the data servers'. Without ``username`` it is the default user's
    (``requirepass``, ``masterauth`` on every data server, ``sentinel auth-pass`` on the
    sentinels); with it, the default user is off and the data servers have three ACL
    users with this password: ``username`` (``+@all`` on every key and channel: the
    application's), ``sentinel-user`` (``SENTINEL_USER_RULES``: ``sentinel auth-user``)
    and ``replica-user`` (``REPLICA_USER_RULES``: ``masteruser``).

    ``sentinel_password``: the sentinels' own. Without ``sentinel_username`` it is
    their ``requirepass`` (which they also use with each other); with it, their default
    user is off, ``sentinel_username`` may run ``SENTINEL_CLIENT_RULES`` only, and the
    sentinels talk to each other as ``sentinel-peer`` (``+@all``, same password)."""

    password: str
    username: Optional[str] = None
    sentinel_password: Optional[str] = None
    sentinel_username: Optional[str] = None

    def __attrs_post_init__(self) -> None:
        if self.sentinel_username is not None and self.sentinel_password is None:
            raise ValueError("SentinelAuth: sentinel_username needs a sentinel_password")

    def __repr__(self) -> str:
        return (f"SentinelAuth(username={self.username!r}, password='***', "
                f"sentinel_username={self.sentinel_username!r}, "
                f"sentinel_password={None if self.sentinel_password is None else '***'})")

    def data_args(self) -> list[str]:
        """redis-server arguments of every data server (any of them may become a replica)."""
        if self.username is None:
            return ["--requirepass", self.password, "--masterauth", self.password]
        secret = f">{self.password}"
        return [
            "--user", "default", "off",
            "--user", self.username, "on", secret, "~*", "&*", "+@all",
            "--user", "sentinel-user", "on", secret, *SENTINEL_USER_RULES,
            "--user", "replica-user", "on", secret, *REPLICA_USER_RULES,
            "--masteruser", "replica-user", "--masterauth", self.password,
        ]

    def data_client_options(self) -> dict[str, Any]:
        options = {"password": self.password}
        return {"username": self.username, **options} if self.username else options

    def sentinel_config(self, service_name: str) -> list[str]:
        """sentinel.conf lines: how the sentinels log in to the data servers and to each
        other, and who may log in to them."""
        lines = [f"sentinel auth-pass {service_name} {self.password}"]
        if self.username is not None:
            lines.append(f"sentinel auth-user {service_name} sentinel-user")
        if self.sentinel_password is None:
            return lines
        if self.sentinel_username is None:
            return [*lines, f"requirepass {self.sentinel_password}"]
        secret = f">{self.sentinel_password}"
        return [
            *lines,
            "user default off",
            f"user sentinel-peer on {secret} allchannels +@all",
            f"user {self.sentinel_username} on {secret} {' '.join(SENTINEL_CLIENT_RULES)}",
            "sentinel sentinel-user sentinel-peer",
            f"sentinel sentinel-pass {self.sentinel_password}",
        ]

    def sentinel_admin_options(self) -> dict[str, Any]:
        """Client options of the deployment's own sentinel clients (all commands)."""
        if self.sentinel_password is None:
            return {}
        if self.sentinel_username is None:
            return {"password": self.sentinel_password}
        return {"username": "sentinel-peer", "password": self.sentinel_password}


class SentinelServer(RedisServer):
    """A ``redis-server --sentinel`` monitoring one primary; its config file (which the
    sentinel rewrites as it learns the topology) lives in its directory."""

    def __init__(self, service_name: str, primary_port: int, quorum: int = 2,
                 down_after_ms: int = DOWN_AFTER_MS, config: Sequence[str] = (), **kwargs: Any) -> None:
        """``config``: more sentinel.conf lines (credentials); TLS, ``client_options``:
        as for ``RedisServer``."""
        super().__init__(**kwargs)
        self.service_name = service_name
        self.config_path = self.directory / "sentinel.conf"
        self.config_path.write_text("\n".join([
            f"sentinel monitor {service_name} {LOOPBACK} {primary_port} {quorum}",
            f"sentinel down-after-milliseconds {service_name} {down_after_ms}",
            f"sentinel failover-timeout {service_name} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {service_name} 2",
            *config,
            "",
        ]))
        self.config_path.chmod(0o600)  # it holds passwords

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{LOOPBACK}:{self.port}"

    def _command_line(self) -> list[str]:
        return [
            self.executable, str(self.config_path), "--sentinel",
            "--bind", LOOPBACK, *self._port_args(), "--dir", str(self.directory),
            "--daemonize", "no", "--logfile", str(self.log_path),
        ]

    def master_state(self) -> dict[str, Any]:
        """``SENTINEL MASTER <service_name>`` as a dict (decoded)."""
        with _client(self) as client:
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
        auth: Optional[SentinelAuth] = None,
        tls: Optional[TlsFiles] = None,
        tls_auth_clients: bool = False,
    ) -> None:
        """``auth``: passwords and ACL users (see ``SentinelAuth``; default none).
        ``tls``: every data server and sentinel speaks TLS only, with these certificates
        (``tls_auth_clients``: and requires a client certificate)."""
        self.executable = executable or find_redis_server_at_least(7)
        self.service_name = service_name
        self.startup_timeout = startup_timeout
        self.auth = auth
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients
        base = Path(directory) if directory is not None else None
        data_args: list[str] = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                                *(auth.data_args() if auth else [])]
        secure: dict[str, Any] = {"executable": self.executable, "tls": tls, "tls_auth_clients": tls_auth_clients}
        data_secure = {**secure, "client_options": auth.data_client_options() if auth else {}}

        def place(name: str) -> Optional[Path]:
            return base / name if base is not None else None

        self.primary_server = RedisServer(appendonly=appendonly, extra_args=data_args, directory=place("primary"),
                                          **data_secure)
        self.data_servers: list[RedisServer] = [self.primary_server] + [
            RedisServer(appendonly=appendonly, directory=place(f"replica-{i}"),
                        extra_args=(*data_args, "--replicaof", LOOPBACK, str(self.primary_server.port)),
                        **data_secure)
            for i in range(replicas)
        ]
        self.sentinel_servers: list[SentinelServer] = [
            SentinelServer(service_name, self.primary_server.port, down_after_ms=down_after_ms,
                           directory=place(f"sentinel-{i}"),
                           config=auth.sentinel_config(service_name) if auth else (),
                           client_options=auth.sentinel_admin_options() if auth else {}, **secure)
            for i in range(sentinels)
        ]

    # -- addressing ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+sentinel://[user:password@]127.0.0.1:S1,127.0.0.1:S2,.../<service_name>``,
        with ``sentinel_username`` / ``sentinel_password`` and the TLS options (the CA;
        the client certificate when required) as the deployment needs them."""
        return self.url_with()

    def url_with(self, **changes: Optional[str]) -> str:
        """``url`` with some of its parts changed: ``username``, ``password``,
        ``sentinel_username``, ``sentinel_password``, or any TLS option
        (``ssl_ca_certs``...); None leaves a part out."""
        auth = self.auth
        parts: dict[str, Optional[str]] = {
            "username": auth.username if auth else None, "password": auth.password if auth else None,
            "sentinel_username": auth.sentinel_username if auth else None,
            "sentinel_password": auth.sentinel_password if auth else None,
        }
        if self.tls is not None:
            tls = self.tls.client_options(client_cert=self.tls_auth_clients)
            parts.update({key: "true" if value is True else str(value) for key, value in tls.items()})
        parts.update(changes)
        username, password = parts.pop("username"), parts.pop("password")
        userinfo = ""
        if password is not None:
            userinfo = f"{quote(username or '', safe='')}:{quote(password, safe='')}@"
        query = "&".join(f"{key}={quote(value, safe='/')}" for key, value in parts.items() if value is not None)
        hosts = ",".join(f"{LOOPBACK}:{s.port}" for s in self.sentinel_servers)
        return f"redis+sentinel://{userinfo}{hosts}/{self.service_name}" + (f"?{query}" if query else "")

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
            with _client(self.server(primary)) as client:
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
                with _client(sentinel) as client:
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
                with _client(sentinel, timeout=5) as client:
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
                    with _client(self.server(port)) as client:
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
        from ..redis_url import redact

        return f"<SentinelDeployment {redact(self.url)}>"
