"""The dashboard over HTTP (a real waitress server, a real Redis, dead letters made by a
real runner): pages, the trim point, the outbox hook, stream discovery, escaping,
the action token and CSRF checks, error pages, no password on any page, mounting
into Flask and another WSGI app, and the ``lightbus-sync dashboard`` command."""

from __future__ import annotations

import html as html_lib
import re
import threading
from typing import Any, Iterator

import pytest

import lightbus_sync
from dashboard_apps.shop_api import DashShopApi  # noqa: F401  (defines the API)
from dashboard_apps.support import TOKEN, Client, dashboard_process  # noqa: F401
from lightbus_sync.dashboard import Dashboard, OutboxBacklog, make_server, mount
from lightbus_sync.dashboard.chart import lag_chart
from lightbus_sync.dashboard.html import Html, html
from lightbus_sync.dashboard.sampler import LagSampler
from lightbus_sync.dashboard.security import CSRF_COOKIE, ActionGuard
from lightbus_sync.ops.status import collect_status
from lightbus_sync.runner import Runner
from ops_apps.ops_support import cli, fast_config, ops_bus, wait_until  # noqa: F401

STREAM = "dash.shop.*:stream"
DEAD = "{" + STREAM + "}:dead"
PAYLOAD = "<script>alert('x')</script>"


@pytest.fixture
def shop_bus(ops_bus, redis_client):  # noqa: F811
    """A bus whose runner dead-lettered order 2 (its note is the script payload) and
    handled orders 1 and 3; the runner is stopped again."""
    bus = ops_bus(service_name="dash")

    def bill(order_id: int, note: str) -> None:
        if order_id == 2:
            raise lightbus_sync.DeadLetter(f"order {order_id}: {note}")

    bus.dash.shop.order_placed.listen(bill, listener_name="billing", since="0")
    for order_id, note in ((1, "a"), (2, PAYLOAD), (3, "c")):
        bus.dash.shop.order_placed.fire(order_id=order_id, note=note)
    with Runner(bus, threads=2) as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: redis_client.xlen(DEAD) == 1
                   and redis_client.xpending(STREAM, "dash-billing")["pending"] == 0
                   and redis_client.xinfo_groups(STREAM)[0]["last-delivered-id"] == redis_client.xrevrange(STREAM, count=1)[0][0])
    return bus


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(wsgi_app) -> a Client on a real waitress server on a free 127.0.0.1 port."""
    servers = []
    closing = threading.Event()

    def run(server: Any) -> None:
        try:
            server.run()
        except OSError:  # select() on the socket close() took away: the fixture's teardown
            if not closing.is_set():
                raise

    def start(app: Any) -> Client:
        server = make_server(app, port=0)
        servers.append(server)
        threading.Thread(target=run, args=(server,), daemon=True).start()
        return Client(f"http://127.0.0.1:{server.effective_port}")

    yield start
    closing.set()
    for server in servers:
        server.close()


def _confirm_form(client: Client, dead_id: str, action: str = "replay") -> dict[str, str]:
    status, _, body = client.request(f"/dead-letters/confirm?action={action}&stream={DEAD}&id={dead_id}")
    assert status == 200, body
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
    return {k: html_lib.unescape(v) for k, v in fields.items()}


# --- pages -----------------------------------------------------------------------------


def test_pages_show_the_bus_through_ops(shop_bus, serve, redis_client):
    client = serve(Dashboard(shop_bus))
    status, headers, body = client.request("/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in headers["Content-Security-Policy"]
    row = re.search(r"<tr><td><code>dash\.shop\.\*:stream</code>.*?</tr>", body).group(0)
    assert ">3</td>" in row and "held by dash-billing (last-delivered)" in row and ">1</a>" in row
    assert "Outbox backlog" not in body  # no outbox module, no hook

    status, _, body = client.request("/groups")
    assert status == 200 and "dash-billing" in body and "<svg" in body
    status, _, body = client.request("/events?api=dash.shop&limit=2")
    assert status == 200 and body.count("dash.shop.order_placed v1") == 2 and "&quot;c&quot;" in body
    status, _, body = client.request("/events")
    assert status == 200 and 'href="/events?api=dash.shop"' in body
    status, _, body = client.request("/dead-letters")
    assert status == 200 and "1 dead letter(s)" in body and "handler marked permanent" in body
    assert "billing" in body and ">1</td>" in body  # attempts
    assert "replay</a>" not in body  # read-only
    dead_id = redis_client.xrange(DEAD)[0][0].decode()
    status, _, body = client.request(f"/dead-letters/show?stream={DEAD}&id={dead_id}")
    assert status == 200 and "dash-billing" in body and "DeadLetter: order 2" in body


def test_stream_values_are_escaped_everywhere(shop_bus, serve, redis_client):
    redis_client.xadd(STREAM, {"id": PAYLOAD, "api_name": "dash.shop", "event_name": "<b>x</b>", "version": "<i>"})
    client = serve(Dashboard(shop_bus, action_token=TOKEN))
    dead_id = redis_client.xrange(DEAD)[0][0].decode()
    for path in ["/", "/groups", "/events?api=dash.shop", "/dead-letters", f"/dead-letters/show?stream={DEAD}&id={dead_id}",
                 f"/dead-letters/confirm?action=replay&stream={DEAD}&id={dead_id}", f"/events?api={PAYLOAD}"]:
        status, _, body = client.request(path.replace("<", "%3C").replace(">", "%3E").replace("'", "%27").replace(" ", "+"))
        assert "<script" not in body and "<b>" not in body and "<i>" not in body, path
    _, _, body = client.request("/events?api=dash.shop")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body  # the malformed entry's raw id field
    assert "malformed" in body


def test_html_escapes_values_but_not_markup():
    assert html("<td>{}</td>", '<a href="x">&') == "<td>&lt;a href=&quot;x&quot;&gt;&amp;</td>"
    assert html("<td>{}</td>", Html("<b>ok</b>")) == "<td><b>ok</b></td>"
    assert html("<td>{}</td>", "{0} {}") == "<td>{0} {}</td>"


def test_streams_page_shows_the_trim_point_and_the_group_holding_it(ops_bus, redis_client, serve):  # noqa: F811
    bus = ops_bus()
    ids = [bus.dash.shop.order_placed.fire(order_id=i, note="n") and redis_client.xrevrange(STREAM, count=1)[0][0]
           for i in range(4)]
    redis_client.xgroup_create(STREAM, "reader", id="0")
    redis_client.xreadgroup("reader", "c1", {STREAM: ">"}, count=3)  # 3 pending, none acked
    redis_client.xack(STREAM, "reader", ids[0])
    redis_client.xgroup_create(STREAM, "caught-up", id="$")
    client = serve(Dashboard(bus, apis=["dash.shop"], include_local=False, discover=False))
    _, _, body = client.request("/streams")
    assert f"<code>{ids[1].decode()}</code><br><span class=\"muted\">held by reader (pending)</span>" in body
    redis_client.xack(STREAM, "reader", ids[1], ids[2])
    _, _, body = client.request("/groups")
    assert f"<code>{ids[2].decode()}</code> (last-delivered)" in body
    redis_client.delete(STREAM)
    bus.dash.shop.order_placed.fire(order_id=9, note="n")
    _, _, body = client.request("/streams")
    assert "no groups" in body


def test_outbox_hook_fills_its_column_and_its_failure_leaves_the_page(shop_bus, serve):
    calls = []

    def backlog():
        calls.append(1)
        if len(calls) > 1:
            raise ConnectionError("outbox database away")
        return {STREAM: OutboxBacklog(7, 12.5)}

    client = serve(Dashboard(shop_bus, outbox_backlog=backlog))
    _, _, body = client.request("/")
    assert "Outbox backlog" in body and "7<br><span class=\"muted\">oldest 12.5s</span>" in body
    status, _, body = client.request("/")
    assert status == 200 and "Outbox backlog" in body and STREAM in body


def test_discovery_finds_streams_no_bus_module_names(ops_bus, serve, cli, redis_url):  # noqa: F811
    producer = ops_bus(service_name="producer")
    producer.dash.shop.order_placed.fire(order_id=1, note="n")
    bare = lightbus_sync.create(redis_url=redis_url)
    try:
        _, _, body = serve(Dashboard(bare, include_local=False)).request("/")
        assert STREAM in body
        _, _, body = serve(Dashboard(bare, include_local=False, discover=False)).request("/")
        assert STREAM not in body and "No streams found" in body
    finally:
        bare.close()
    code, out, err = cli("status", "--redis-url", redis_url, "--all-streams")
    assert code == 0 and STREAM in out, err
    code, out, _ = cli("status", "--redis-url", redis_url)  # neither --bus nor --api: discovery too
    assert code == 0 and STREAM in out
    code, out, _ = cli("status", "--redis-url", redis_url, "--api", "dash.mail")
    assert STREAM not in out
    code, out, _ = cli("status", "--redis-url", redis_url, "--api", "dash.mail", "--all-streams")
    assert STREAM in out


def test_lag_chart_draws_samples_and_breaks_on_unknown():
    empty = lag_chart([], now=10.0)
    assert "no samples yet" in empty and "polyline" not in empty
    unknown = lag_chart([(1.0, None), (2.0, None)], now=3.0)
    assert "lag unknown" in unknown
    chart = lag_chart([(0.0, 0), (1.0, 4), (2.0, None), (3.0, 2), (4.0, 8)], now=4.0)
    assert chart.count("<polyline") == 2 and "now 8, highest 8" in chart


def test_sampler_keeps_samples_per_group_and_survives_failures(shop_bus, caplog):
    results: list[Any] = []

    def collect():
        if len(results) == 1:
            results.append("failed")
            raise ConnectionError("Redis away")
        status = collect_status(shop_bus, ["dash.shop"])
        results.append(status)
        return status

    sampler = LagSampler(collect, interval=0.05, keep=3).start()
    try:
        wait_until(lambda: len(results) >= 6, what="six sample attempts")
    finally:
        sampler.stop()
    redis = shop_bus.transport_for("dash.shop").safe_url
    series = sampler.series(redis, STREAM, "dash-billing")
    assert len(series) == 3 and all(isinstance(t, float) for t, _ in series)
    assert "lag sample failed: ConnectionError: Redis away" in caplog.text
    with pytest.raises(ValueError, match="interval"):
        LagSampler(collect, interval=0)


# --- actions ---------------------------------------------------------------------------


def test_replay_and_purge_with_token_csrf_and_confirmation(shop_bus, serve, redis_client):
    client = serve(Dashboard(shop_bus, action_token=TOKEN))
    dead_id = redis_client.xrange(DEAD)[0][0].decode()
    _, _, body = client.request("/dead-letters")
    assert "replay</a>" in body and "purge</a>" in body
    form = _confirm_form(client, dead_id)
    assert form["csrf"] == client.cookie(CSRF_COOKIE) and form["confirm"] == "yes"
    status, _, body = client.request("/dead-letters/replay", dict(form, token=TOKEN))
    assert status == 200 and f"Replayed {dead_id}" in body
    assert redis_client.xlen(DEAD) == 0 and redis_client.xlen("{" + STREAM + "}:replay:dash-billing") == 1
    status, _, body = client.request("/dead-letters/replay", dict(form, token=TOKEN))
    assert status == 404 and "no dead letter" in body  # twice: nothing more

    new_id = redis_client.xadd(DEAD, {"dl:stream": STREAM, "dl:group": "dash-billing", "id": "e1",
                                      "api_name": "dash.shop", "event_name": "order_placed"}).decode()
    form = _confirm_form(client, new_id, "purge")
    status, _, body = client.request("/dead-letters/purge", dict(form, token=TOKEN))
    assert status == 200 and f"Purged {new_id}" in body and redis_client.xlen(DEAD) == 0


@pytest.mark.parametrize("change, status, message", [
    ({"token": "wrong-token-wrong-token"}, 403, "wrong action token"),
    ({"token": ""}, 403, "wrong action token"),
    ({"csrf": "forged"}, 403, "CSRF token is missing or wrong"),
    ({"csrf": ""}, 403, "CSRF token is missing or wrong"),
    ({"confirm": ""}, 400, "not confirmed"),
])
def test_actions_are_refused_without_token_csrf_or_confirmation(shop_bus, serve, redis_client, change, status, message):
    client = serve(Dashboard(shop_bus, action_token=TOKEN))
    dead_id = redis_client.xrange(DEAD)[0][0].decode()
    form = dict(_confirm_form(client, dead_id), token=TOKEN)
    got, _, body = client.request("/dead-letters/replay", dict(form, **change))
    assert got == status and message in body
    assert redis_client.xlen(DEAD) == 1


def test_actions_are_refused_from_another_site_or_without_the_cookie(shop_bus, serve, redis_client):
    client = serve(Dashboard(shop_bus, action_token=TOKEN))
    dead_id = redis_client.xrange(DEAD)[0][0].decode()
    form = dict(_confirm_form(client, dead_id), token=TOKEN)
    status, _, body = client.request("/dead-letters/replay", form, headers={"Origin": "http://evil.example"})
    assert status == 403 and "another site" in body
    stranger = Client(client.base)  # no cookie: a cross-site form post carries none (SameSite=Strict)
    status, _, body = stranger.request("/dead-letters/replay", form)
    assert status == 403 and "CSRF" in body
    assert redis_client.xlen(DEAD) == 1
    status, _, _ = client.request(f"/dead-letters/replay?stream={DEAD}&id={dead_id}")  # a GET never acts
    assert status == 405 and redis_client.xlen(DEAD) == 1


def test_read_only_without_a_token(shop_bus, serve, redis_client):
    client = serve(Dashboard(shop_bus))
    dead_id = redis_client.xrange(DEAD)[0][0].decode()
    status, _, body = client.request(f"/dead-letters/confirm?action=replay&stream={DEAD}&id={dead_id}")
    assert status == 403 and "read-only" in body
    client.request("/")
    status, _, body = client.request("/dead-letters/replay", {"csrf": client.cookie(CSRF_COOKIE), "token": TOKEN,
                                                              "stream": DEAD, "id": dead_id, "confirm": "yes"})
    assert status == 403 and "read-only" in body and redis_client.xlen(DEAD) == 1


def test_a_short_action_token_is_refused():
    with pytest.raises(ValueError, match="action token: expected at least 16 characters"):
        ActionGuard("short")


# --- errors ----------------------------------------------------------------------------


def test_bad_requests_get_clear_errors(shop_bus, serve):
    client = serve(Dashboard(shop_bus, action_token=TOKEN))
    status, _, body = client.request("/events?api=dash.shop&limit=abc")
    assert status == 400 and "limit: expected a whole number from 1 to 500, got &#x27;abc&#x27;" in body
    status, _, body = client.request("/dead-letters?limit=0")
    assert status == 400 and "limit" in body
    status, _, body = client.request("/dead-letters/show?stream=" + DEAD)
    assert status == 400 and "stream and id" in body
    status, _, body = client.request(f"/dead-letters/show?stream={DEAD}&id=1-1")
    assert status == 404 and "no dead letter 1-1" in body
    status, _, body = client.request(f"/dead-letters/confirm?action=drop&stream={DEAD}&id=1-1")
    assert status == 400 and "action: expected replay or purge" in body
    status, _, _ = client.request("/nowhere")
    assert status == 404
    status, _, body = client.request("/dead-letters/replay", {"x": "y" * 20000})
    assert status == 413


def test_redis_away_gives_an_error_page_and_no_password(fresh_redis_server, serve):
    fresh_redis_server.client().config_set("requirepass", "s3cret-pw")
    url = f"redis://:s3cret-pw@127.0.0.1:{fresh_redis_server.port}/0"
    bus = lightbus_sync.create(redis_url=url, service_name="dash", config=fast_config())
    try:
        bus.dash.shop.order_placed.fire(order_id=1, note="n")
        client = serve(Dashboard(bus))
        for path in ["/", "/groups", "/events?api=dash.shop", "/dead-letters"]:
            status, _, body = client.request(path)
            assert status == 200 and "s3cret" not in body, path
        assert "redis://:***@127.0.0.1" in body
        fresh_redis_server.stop()
        status, _, body = client.request("/")
        assert status == 503 and "Redis unavailable" in body and "s3cret" not in body
    finally:
        bus.close()


# --- mounting --------------------------------------------------------------------------


def test_mounts_into_flask_with_links_under_the_prefix(shop_bus):
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)

    @app.route("/")
    def home() -> str:
        return "the app"

    app.wsgi_app = mount("/bus", Dashboard(shop_bus), app.wsgi_app)
    test = app.test_client()
    assert test.get("/").data == b"the app"
    page = test.get("/bus/")
    assert page.status_code == 200 and b'href="/bus/groups"' in page.data and STREAM.encode() in page.data
    assert test.get("/bus").status_code == 200
    assert b'href="/bus/dead-letters?stream=' in page.data
    assert "Path=/bus/" in page.headers["Set-Cookie"]
    assert test.get("/business").status_code == 404  # Flask's own 404: not under the prefix


def test_mount_needs_a_prefix(shop_bus):
    with pytest.raises(ValueError, match="prefix"):
        mount("/", Dashboard(shop_bus), lambda environ, start_response: [])


# --- the command -----------------------------------------------------------------------


def test_command_binds_loopback_serves_and_stops_on_sigterm(shop_bus, dashboard_process, redis_url):  # noqa: F811
    dash = dashboard_process(redis_url)
    assert dash.url.startswith("http://127.0.0.1:") and "read-only" in dash.output()
    status, _, body = Client(dash.url).request("/")
    assert status == 200 and STREAM in body
    assert dash.stop() == 0


def test_command_errors(dashboard_process, redis_url, tmp_path, cli):  # noqa: F811
    code, _, err = cli("dashboard", "--redis-url", redis_url, "--sample-interval", "0")
    assert code == 2 and "--sample-interval: expected seconds > 0" in err
    code, _, err = cli("dashboard", "--redis-url", redis_url, "--action-token-file", str(tmp_path / "none"))
    assert code == 2 and "--action-token-file" in err and "No such file" in err
    (tmp_path / "short").write_text("abc\n")
    code, _, err = cli("dashboard", "--redis-url", redis_url, "--action-token-file", str(tmp_path / "short"))
    assert code == 2 and "at least 16 characters" in err
    dash = dashboard_process(redis_url)
    port = dash.url.rsplit(":", 1)[1].strip("/")
    code, _, err = cli("dashboard", "--redis-url", redis_url, "--port", port)
    assert code == 2 and f"cannot serve the dashboard on 127.0.0.1:{port}" in err
    (tmp_path / "token").write_text(TOKEN + "\n")
    acting = dashboard_process(redis_url, "--action-token-file", str(tmp_path / "token"))
    assert "actions enabled" in acting.output()
