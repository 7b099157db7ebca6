"""Redis Sentinel with passwords, ACL users and TLS, on real deployments (a primary, two
replicas, three sentinels): fire, a real ``lightbus-sync run`` consuming and
``lightbus-sync status`` through each; refused credentials and untrusted certificates
are configuration errors that say so, and no password shows anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

import lightbus_sync
from lightbus_sync.errors import TransportError
from lightbus_sync.testing.redis_sentinel import SentinelAuth, SentinelDeployment
from lightbus_sync.testing.tls import TlsFiles, TlsToolMissing, make_tls_files
from runner_apps.harness import fast_config, lines, run_process, wait_until  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "runner_apps"

DATA_SECRET = "DataPassw0rd-7f3"
SENTINEL_SECRET = "SentinelPassw0rd-91c"
WRONG_SECRET = "Wr0ngPassw0rd-55e"
SECRETS = (DATA_SECRET, SENTINEL_SECRET, WRONG_SECRET)
STREAM = "runner_test.*:stream"

AUTHS = {
    "requirepass": SentinelAuth(DATA_SECRET, sentinel_password=SENTINEL_SECRET),
    "acl users": SentinelAuth(DATA_SECRET, username="app", sentinel_password=SENTINEL_SECRET,
                              sentinel_username="watcher"),
}


def _no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a password shows in: {text}"


@pytest.fixture(scope="module", params=list(AUTHS))
def auth_deployment(request: pytest.FixtureRequest) -> Iterator[SentinelDeployment]:
    """Data servers and sentinels that require passwords (the default users') or ACL
    users (the default users off)."""
    with SentinelDeployment(auth=AUTHS[request.param]) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    try:
        return make_tls_files(tmp_path_factory.mktemp("tls"))
    except TlsToolMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> TlsFiles:
    """An unrelated CA: clients trusting it do not verify the deployments' servers."""
    return make_tls_files(tmp_path_factory.mktemp("other-tls"), ca_name="some other CA")


@pytest.fixture(scope="module", params=["tls", "mutual tls"])
def tls_deployment(request: pytest.FixtureRequest, tls_files: TlsFiles) -> Iterator[SentinelDeployment]:
    """Every process TLS only (``mutual tls``: clients must present a certificate)."""
    with SentinelDeployment(tls=tls_files, tls_auth_clients=request.param == "mutual tls") as deployment:
        yield deployment


def _fresh(deployment: SentinelDeployment) -> SentinelDeployment:
    deployment.wait_healthy(30)
    with deployment.client() as client:
        client.flushall()
    return deployment


def _bus(url: str, **redis_config: Any) -> Any:
    from runner_apps.runner_api import RunnerTestApi  # noqa: F401 (defines the API)

    return lightbus_sync.create(redis_url=url, service_name="secure", process_name="p1", config={
        "apis": {"default": {"event_fire_timeout": 3,
                             "event_transport": {"redis": {"socket_timeout": 1, **redis_config}}}}})


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBUS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(REPO)])
    return subprocess.run([sys.executable, "-m", "lightbus_sync.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(APPS))


def _fire_and_run(deployment: SentinelDeployment, run_process, redis_url: str, redis_client) -> str:
    """A ``lightbus-sync run`` through the deployment's URL handles 20 events fired
    through it (with min_replicas 1); returns the runner's output."""
    url = deployment.url
    runner = run_process("recording_bus", url, config=fast_config(), env={"TEST_REDIS_URL": redis_url})
    runner.wait_ready(30)
    bus = _bus(url, min_replicas=1)
    try:
        bus.runner_test.job.fire_many([{"n": n} for n in range(10)])
        for n in range(10, 20):
            bus.runner_test.job.fire(n=n)
        text = repr(bus) + str(bus.config) + repr(bus.transport_for("default").client)
        text += repr(bus.transport_for("default").client.connection_pool)
        text += "".join(repr(s) + repr(s.connection_pool) for s in bus.transport_for("default").client.sentinel.sentinels)
    finally:
        bus.close()
    wait_until(lambda: len(lines(redis_client, "seen:l0")) >= 20, 30, interval=0.1, what="20 handled")
    assert sorted(int(line.split("|")[0]) for line in lines(redis_client, "seen:l0")) == list(range(20))
    assert runner.stop() == 0
    with deployment.client() as primary:
        assert primary.xpending(STREAM, "rt-l0")["pending"] == 0
    _no_secret(text, runner.output(), repr(deployment))
    return runner.output()


# --- passwords and ACL users ---------------------------------------------------------------


def test_fire_and_run_through_password_protected_sentinels(auth_deployment, run_process, redis_url, redis_client):
    """With ACL users the default users are off: the runner and the producer log in as
    ``app`` to the data servers and as ``watcher`` (SENTINEL_CLIENT_RULES only) to the
    sentinels."""
    _fire_and_run(_fresh(auth_deployment), run_process, redis_url, redis_client)


def test_status_through_password_protected_sentinels(auth_deployment):
    deployment = _fresh(auth_deployment)
    bus = _bus(deployment.url, min_replicas=2)
    try:
        bus.runner_test.job.fire(n=1)
        view = bus.transport_for("default").sentinel_view()
    finally:
        bus.close()
    assert view["sentinels_up"] == 3  # PING allowed
    assert sorted(r["address"] for r in view["known_replicas"]) == sorted(  # SENTINEL REPLICAS allowed
        f"127.0.0.1:{s.port}" for s in deployment.replicas())
    done = _cli("status", "--redis-url", deployment.url, "--api", "runner_test")
    assert done.returncode == 0, done.stderr
    assert f"127.0.0.1:{deployment.primary_port()}" in done.stdout and "3/3 up" in done.stdout
    assert STREAM in done.stdout
    _no_secret(done.stdout, done.stderr)


@pytest.mark.parametrize("wrong, message", [
    ({"sentinel_password": WRONG_SECRET}, "the sentinels refused the connection"),
    ({"password": WRONG_SECRET}, "refused the connection"),
])
def test_a_wrong_password_is_a_clear_configuration_error(auth_deployment, wrong, message, run_process, redis_url):
    deployment = _fresh(auth_deployment)
    url = deployment.url_with(**wrong)
    bus = _bus(url)
    try:
        with pytest.raises(TransportError, match=message) as info:
            bus.runner_test.job.fire(n=1)
        # TransportError, not BusUnavailable: refused at once, not retried until event_fire_timeout
        assert "retrying will not help" in str(info.value)
        _no_secret(str(info.value), repr(info.value), repr(bus), str(info.value.__cause__ or ""))
    finally:
        bus.close()
    runner = run_process("recording_bus", url, config=fast_config(), env={"TEST_REDIS_URL": redis_url})
    assert runner.wait(30) == 2, runner.output()
    assert message in runner.output() and "retrying will not help" in runner.output()
    status = _cli("status", "--redis-url", url, "--api", "runner_test")
    assert status.returncode == 4, status.stderr
    assert message in status.stderr
    _no_secret(runner.output(), status.stdout, status.stderr)


def test_the_sentinel_password_is_needed(auth_deployment):
    """A URL without ``sentinel_password`` is refused by the sentinels, saying which
    options to check."""
    deployment = _fresh(auth_deployment)
    bus = _bus(deployment.url_with(sentinel_password=None, sentinel_username=None))
    try:
        with pytest.raises(TransportError, match="check sentinel_username and sentinel_password") as info:
            bus.runner_test.job.fire(n=1)
        _no_secret(str(info.value))
    finally:
        bus.close()


# --- TLS -----------------------------------------------------------------------------------


def test_fire_and_run_through_tls_sentinels(tls_deployment, run_process, redis_url, redis_client):
    deployment = _fresh(tls_deployment)
    assert "ssl=true" in deployment.url and "ssl_ca_certs=" in deployment.url
    assert ("ssl_certfile=" in deployment.url) == deployment.tls_auth_clients
    _fire_and_run(deployment, run_process, redis_url, redis_client)
    done = _cli("status", "--redis-url", deployment.url, "--api", "runner_test")
    assert done.returncode == 0, done.stderr
    assert "3/3 up" in done.stdout and f"127.0.0.1:{deployment.primary_port()}" in done.stdout


def _refused_as_configuration(url: str, fire_error: str, run_process: Any, redis_url: str) -> str:
    """fire() on ``url`` raises TransportError matching ``fire_error`` (not BusUnavailable:
    refused at once, not retried until event_fire_timeout), and ``lightbus-sync run`` on
    it exits 2 (configuration). Returns the run's output."""
    bus = _bus(url)
    try:
        with pytest.raises(TransportError, match=fire_error):
            bus.runner_test.job.fire(n=1)
    finally:
        bus.close()
    runner = run_process("recording_bus", url, config=fast_config(), env={"TEST_REDIS_URL": redis_url})
    assert runner.wait(30) == 2, runner.output()
    return runner.output()


def test_a_wrong_ca_is_a_clear_configuration_error(tls_deployment, other_ca, run_process, redis_url):
    deployment = _fresh(tls_deployment)
    url = deployment.url_with(ssl_ca_certs=str(other_ca.ca_cert))
    output = _refused_as_configuration(url, "TLS with the sentinels failed.*CERTIFICATE_VERIFY_FAILED", run_process,
                                       redis_url)
    assert "TLS with the sentinels failed" in output
    status = _cli("status", "--redis-url", url, "--api", "runner_test")
    assert status.returncode == 4, status.stderr
    assert "Redis unavailable" in status.stderr and "TLS with the sentinels failed" in status.stderr


def test_plain_connections_to_tls_sentinels_fail(tls_deployment):
    """Without ``ssl=true`` a TLS-only sentinel is not reached: transient (it could be a
    sentinel restarting), so fire() retries until its deadline and says where it failed."""
    deployment = _fresh(tls_deployment)
    bus = _bus(deployment.url.split("?", 1)[0])
    try:
        with pytest.raises(lightbus_sync.BusUnavailable, match="no primary found for 'mymaster'"):
            bus.runner_test.job.fire(n=1)
    finally:
        bus.close()


def test_mutual_tls_without_a_client_certificate_is_a_clear_configuration_error(tls_files, run_process, redis_url):
    with SentinelDeployment(tls=tls_files, tls_auth_clients=True) as deployment:
        url = deployment.url_with(ssl_certfile=None, ssl_keyfile=None)
        output = _refused_as_configuration(url, "TLS with the sentinels failed.*certificate required", run_process,
                                           redis_url)
        assert "certificate required" in output


# --- the test helpers' own checks ----------------------------------------------------------


def test_sentinel_auth_is_checked_and_hides_its_passwords():
    with pytest.raises(ValueError, match="sentinel_username needs a sentinel_password"):
        SentinelAuth(DATA_SECRET, sentinel_username="watcher")
    shown = repr(AUTHS["acl users"])
    assert "app" in shown and "watcher" in shown
    _no_secret(shown)


def test_tls_files_need_openssl_and_report_its_failure(tmp_path, monkeypatch):
    (tmp_path / "bad" / "ca.key").mkdir(parents=True)  # where the CA's key should go
    with pytest.raises(RuntimeError, match=r"openssl req failed \(\d+\): .*ca\.key"):
        make_tls_files(tmp_path / "bad")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(TlsToolMissing, match="openssl command line tool is not installed"):
        make_tls_files(tmp_path / "none")


def test_replica_problems_cover_an_unreachable_primary_and_no_replica():
    from lightbus_sync.ops.replication import ReplicaStatus, ReplicationStatus, replica_problems

    unreachable = ReplicationStatus("redis+sentinel://h:1/m", "m", None, 3, 0, error="MasterNotFoundError: none")
    [(kind, address, _, message)] = replica_problems(unreachable, 1)
    assert (kind, address) == ("replica_down", None) and "the primary is unreachable (MasterNotFoundError" in message
    alone = ReplicationStatus("redis+sentinel://h:1/m", "m", "h:2", 3, 3, primary_offset=10)
    [(kind, _, value, message)] = replica_problems(alone, 1)
    assert (kind, value) == ("replica_down", 0) and "no replica connected" in message
    syncing = ReplicationStatus("redis+sentinel://h:1/m", "m", "h:2", 3, 3, primary_offset=10, replicas=[
        ReplicaStatus("h:3", "wait_bgsave", 0, 10, None), ReplicaStatus("h:4", "online", 10, 0, None),
        ReplicaStatus("h:5", "online", 10, 0, 1)])
    found = replica_problems(syncing, 1)
    assert [(k, a) for k, a, _, _ in found] == [("replica_down", "h:3"), ("replica_lag", "h:4")]
    assert "is wait_bgsave" in found[0][3] and "lag unknown > 1s" in found[1][3]
