"""Schemas on the bus: generation (against real Lightbus fixtures), sharing, validation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.errors import SchemaMismatch, UnknownApi
from lightbus_sync.schema import api_schema, encode_schema
from lightbus_sync.runner import dead_letter_stream

from schema_apps import lightbus_types

FIXTURES = Path(__file__).parent / "fixtures" / "lightbus_schemas"
QUICK = {"apis": {"default": {"event_transport": {"redis": {
    "acknowledgement_timeout": 1, "reclaim_interval": 0.2, "block_ms": 100}}}}}


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _class_required_as_sets(node):
    """Lightbus orders `required` of class schemas by a Python set: compare as sets."""
    if isinstance(node, dict):
        out = {k: _class_required_as_sets(v) for k, v in node.items()}
        if "title" in node and "required" in node and not str(node["title"]).startswith("Event "):
            out["required"] = sorted(node["required"])
        return out
    if isinstance(node, list):
        return [_class_required_as_sets(v) for v in node]
    return node


# --- generation ------------------------------------------------------------------------


def test_defaults_schema_is_byte_identical_to_lightbus():
    assert encode_schema(api_schema(lightbus_types.DefaultsApi.definition)) == (FIXTURES / "defaults_demo.json").read_text()


def test_auth_schema_matches_lightbus_events():
    theirs = _fixture("my_company.auth")
    mine = json.loads(encode_schema(api_schema(lightbus_types.AuthApi.definition)))
    assert mine["rpcs"] == {}  # lightbus_sync has no RPCs; the fixture's API had one
    assert _class_required_as_sets(mine["events"]) == _class_required_as_sets(theirs["events"])


@pytest.mark.parametrize("event", ["primitives", "specials", "unions"])
def test_type_mapping_matches_lightbus(event):
    theirs = _fixture("my_company.types")["events"][event]
    mine = api_schema(lightbus_types.TypesApi.definition)["events"][event]
    assert mine == theirs


def test_containers_match_lightbus_except_variable_tuples():
    theirs = _fixture("my_company.types")["events"]["containers"]["parameters"]
    mine = api_schema(lightbus_types.TypesApi.definition)["events"]["containers"]["parameters"]
    # Lightbus 1.1.2 turns tuple[int, ...] into a 2-item tuple; ours accepts any length.
    assert theirs["properties"].pop("tuple_ellipsis")["maxItems"] == 2
    assert mine["properties"].pop("tuple_ellipsis") == {"items": {"type": "integer"}, "type": "array"}
    assert _class_required_as_sets(mine) == _class_required_as_sets(theirs)


def test_objects_match_lightbus_except_attrs_defaults():
    theirs = _fixture("my_company.types")["events"]["objects"]["parameters"]
    mine = api_schema(lightbus_types.TypesApi.definition)["events"]["objects"]["parameters"]
    # Lightbus drops attrs defaults (every field required); ours keeps them.
    their_money, my_money = theirs["properties"].pop("money"), mine["properties"].pop("money")
    assert sorted(their_money["required"]) == ["amount", "currency"]
    assert my_money["required"] == ["amount"]
    assert my_money["properties"]["currency"] == {"default": "EUR", "type": "string"}
    assert _class_required_as_sets(mine) == _class_required_as_sets(theirs)


# --- sharing ---------------------------------------------------------------------------


class ShopApi(Api):
    order_placed = Event(parameters=(Parameter("order_id", int), Parameter("note", str, default="")))

    class Meta:
        name = "schema_test.shop"


def test_first_fire_publishes_and_refreshes_until_close(redis_url, redis_client):
    bus = lightbus_lightbus = lightbus_sync.create(
        redis_url=redis_url, service_name="shop", config={"bus": {"schema": {"ttl": 1}}}
    )
    try:
        assert redis_client.get("schema:schema_test.shop") is None
        bus.schema_test.shop.order_placed.fire(order_id=1)
        stored = redis_client.get("schema:schema_test.shop")
        assert json.loads(stored) == api_schema(ShopApi.definition)
        assert 0 < redis_client.ttl("schema:schema_test.shop") <= 1
        assert redis_client.smembers("schemas") == {b"schema_test.shop"}
        time.sleep(2.5)  # > 2 TTLs: alive only because it is refreshed
        assert redis_client.get("schema:schema_test.shop") is not None
    finally:
        lightbus_lightbus.close()
    time.sleep(1.5)
    assert redis_client.get("schema:schema_test.shop") is None


REMOTE_PRODUCER = textwrap.dedent('''
    import datetime, decimal, enum, sys
    import lightbus_sync
    from lightbus_sync import Api, Event, Parameter

    class Status(enum.Enum):
        NEW = "new"
        PAID = "paid"

    class BillingApi(Api):
        invoice_sent = Event(parameters=(
            Parameter("invoice_id", int),
            Parameter("status", Status),
            Parameter("sent_at", datetime.datetime),
            Parameter("amount", decimal.Decimal),
            Parameter("note", str, default=None),
        ))
        class Meta:
            name = "remote.billing"

    bus = lightbus_sync.create(redis_url=sys.argv[1], service_name="billing")
    bus.remote.billing.invoice_sent.fire(
        invoice_id=7, status=Status.PAID, amount=decimal.Decimal("12.50"),
        sent_at=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc))
    bus.close()
''')


@pytest.fixture
def remote_billing(redis_url, tmp_path):
    """Another process defines remote.billing, fires one event (publishing its schema), exits."""
    script = tmp_path / "producer.py"
    script.write_text(REMOTE_PRODUCER)
    subprocess.run([sys.executable, str(script), redis_url], check=True, timeout=30)
    return redis_url


def _collect(bus, event, listener_name, **options):
    received = []
    done = threading.Event()

    def handler(event_message, **kwargs):
        received.append((event_message, kwargs))
        done.set()

    event.listen(handler, listener_name=listener_name, since="0", **options)
    return received, done


def test_listening_to_an_api_defined_only_in_another_process(remote_billing):
    import datetime
    import decimal

    bus = lightbus_sync.create(redis_url=remote_billing, service_name="accounts", config=QUICK)
    try:
        received, done = _collect(bus, bus.remote.billing.invoice_sent, "book_invoice")
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            assert done.wait(10)
        message, kwargs = received[0]
        assert kwargs == {
            "invoice_id": 7, "status": "paid", "note": None,
            "sent_at": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
            "amount": decimal.Decimal("12.50"),
        }
    finally:
        bus.close()


def test_listen_time_check_uses_the_remote_schema(remote_billing):
    bus = lightbus_sync.create(redis_url=remote_billing, service_name="accounts")
    try:
        def wrong(invoice_id, total):
            pass

        with pytest.raises(lightbus_sync.InvalidListener, match="total"):
            bus.remote.billing.invoice_sent.listen(wrong, listener_name="wrong")
    finally:
        bus.close()


def test_unknown_remote_api_without_schema_is_a_clear_error(redis_url):
    bus = lightbus_sync.create(redis_url=redis_url, service_name="accounts")
    try:
        with pytest.raises(UnknownApi, match="no schema for it is on the bus"):
            bus.nowhere.thing_happened
    finally:
        bus.close()


def test_outgoing_validation_against_remote_schema(remote_billing, redis_client):
    import datetime
    import decimal

    call = dict(invoice_id=8, status="refunded", amount=decimal.Decimal("1"),
                sent_at=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    bus = lightbus_sync.create(redis_url=remote_billing, service_name="accounts")
    try:
        before = redis_client.xlen("remote.billing.*:stream")
        with pytest.raises(SchemaMismatch, match="must be one of"):
            bus.remote.billing.invoice_sent.fire(**call)
        assert redis_client.xlen("remote.billing.*:stream") == before
    finally:
        bus.close()
    lax = lightbus_sync.create(redis_url=remote_billing, service_name="accounts",
                               config={"apis": {"remote.billing": {"validate": {"outgoing": False}}}})
    try:
        lax.remote.billing.invoice_sent.fire(**call)
        assert redis_client.xlen("remote.billing.*:stream") == before + 1
    finally:
        lax.close()


def _xadd_invoice(redis_client, status):
    return redis_client.xadd("remote.billing.*:stream", {
        "id": f"hand-{status}", "api_name": "remote.billing", "event_name": "invoice_sent", "version": "1",
        ":invoice_id": "9", ":status": json.dumps(status), ":sent_at": '"2024-01-01T00:00:00+00:00"',
        ":amount": '"3.00"',
    })


@pytest.mark.parametrize("incoming", [True, False])
def test_incoming_validation_sets_mismatches_aside(remote_billing, redis_client, incoming):
    bus = lightbus_sync.create(
        redis_url=remote_billing, service_name=f"audit{incoming}",
        config={**QUICK, "apis": {**QUICK["apis"], "remote.billing": {"validate": {"incoming": incoming}}}},
    )
    try:
        received, done = _collect(bus, bus.remote.billing.invoice_sent, "audit")
        bad_id = _xadd_invoice(redis_client, "refunded")
        _xadd_invoice(redis_client, "new")
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            deadline = time.monotonic() + 10
            expected = 3 if not incoming else 2  # the producer's event + good (+ bad)
            while len(received) < expected and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
        statuses = [kwargs["status"] for _, kwargs in received]
        dead = redis_client.xrange(dead_letter_stream("remote.billing.*:stream"))
        if incoming:
            assert statuses == ["paid", "new"]
            assert [d[1][b"dl:original_id"] for d in dead] == [bad_id]
            assert b"must be one of" in dead[0][1][b"dl:error"]
        else:
            assert statuses == ["paid", "refunded", "new"]
            assert dead == []
        assert redis_client.xpending("remote.billing.*:stream", f"audit{incoming}-audit")["pending"] == 0
    finally:
        bus.close()


# --- evolving an event -------------------------------------------------------------------


class EvolvingApi(Api):
    # version 2 added `channel` with a default: older producers do not send it.
    signed_up = Event(parameters=(Parameter("username", str), Parameter("channel", str, default="web")))

    class Meta:
        name = "schema_test.evolving"
        version = 2


def test_old_producer_new_consumer_gets_the_default_and_new_producer_old_consumer_loses_nothing(
    redis_url, redis_client
):
    stream = "schema_test.evolving.*:stream"
    bus = lightbus_sync.create(redis_url=redis_url, service_name="growth", config=QUICK)
    try:
        received, done = _collect(bus, bus.schema_test.evolving.signed_up, "count_signups")
        # An old (version 1) producer: no `channel`.
        redis_client.xadd(stream, {"id": "old-1", "api_name": "schema_test.evolving", "event_name": "signed_up",
                                   "version": "1", ":username": '"ada"'})
        # A producer newer than us: sends `referrer`, which we do not know.
        newer_id = redis_client.xadd(stream, {"id": "new-1", "api_name": "schema_test.evolving",
                                              "event_name": "signed_up", "version": "3", ":username": '"bob"',
                                              ":channel": '"app"', ":referrer": '"ad"'})
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            assert done.wait(10)
            time.sleep(0.5)
        assert [(m.version, kw) for m, kw in received] == [(1, {"username": "ada", "channel": "web"})]
        dead = redis_client.xrange(dead_letter_stream(stream))
        assert [d[1][b"dl:original_id"] for d in dead] == [newer_id]
        assert b"referrer" in dead[0][1][b"dl:error"]
        assert dead[0][1][b":referrer"] == b'"ad"'  # the original fields are kept for replay
    finally:
        bus.close()


# --- files and the command line ----------------------------------------------------------


def test_dumpschema_writes_local_and_remote_schemas(remote_billing, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "shop_bus.py").write_text(textwrap.dedent('''
        import lightbus_sync
        from lightbus_sync import Api, Event
        class ShopApi(Api):
            order_placed = Event(parameters=("order_id",))
            class Meta:
                name = "dump.shop"
        bus = lightbus_sync.create(service_name="shop")
    '''))
    out = tmp_path / "schemas"
    result = subprocess.run(
        [sys.executable, "-m", "lightbus_sync.cli", "dumpschema", "--bus", "shop_bus",
         "--redis-url", remote_billing, "--out", f"{out}/"],
        cwd=app, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["dump.shop.json", "remote.billing.json"]
    # One {api_name: document} per file, as Lightbus's `dumpschema --out DIR` writes them.
    assert json.loads((out / "dump.shop.json").read_text())["dump.shop"]["events"]["order_placed"]["parameters"]["required"] == ["order_id"]
    billing = json.loads((out / "remote.billing.json").read_text())["remote.billing"]
    assert billing["events"]["invoice_sent"]["parameters"]["properties"]["status"]["enum"] == ["new", "paid"]


def test_schema_files_stand_in_for_a_producer_that_is_not_running(remote_billing, redis_client, tmp_path):
    document = redis_client.get("schema:remote.billing")
    (tmp_path / "remote.billing.json").write_bytes(document)
    redis_client.delete("schema:remote.billing")
    redis_client.srem("schemas", "remote.billing")
    bus = lightbus_sync.create(redis_url=remote_billing, service_name="offline")
    try:
        with pytest.raises(UnknownApi):
            bus.remote.billing
        assert bus.schemas.load_files(tmp_path) == ["remote.billing"]
        assert bus.remote.billing.invoice_sent.definition.parameter_names[0] == "invoice_id"
    finally:
        bus.close()


@pytest.mark.parametrize("strict", [True, False])
def test_a_remote_schema_that_disappears_strict_sets_events_aside_lax_keeps_the_last(
    remote_billing, redis_client, strict
):
    bus = lightbus_sync.create(
        redis_url=remote_billing, service_name=f"strict{strict}",
        config={**QUICK, "bus": {"schema": {"ttl": 1}},
                "apis": {**QUICK["apis"], "remote.billing": {"strict_validation": strict}}},
    )
    try:
        received, _ = _collect(bus, bus.remote.billing.invoice_sent, "audit")
        with bus.listening() as runner:
            assert runner.wait_until_ready(10)
            time.sleep(0.5)  # the producer's event
            redis_client.delete("schema:remote.billing")
            time.sleep(2)  # the schema keeper reloads (every ttl * 0.8 s) and sees it gone
            event_id = _xadd_invoice(redis_client, "new")
            deadline = time.monotonic() + 10
            dead = []
            while time.monotonic() < deadline:
                dead = redis_client.xrange(dead_letter_stream("remote.billing.*:stream"))
                if dead or any(kw["status"] == "new" for _, kw in received):
                    break
                time.sleep(0.05)
        if strict:
            assert [d[1][b"dl:original_id"] for d in dead] == [event_id]
            assert b"no schema" in dead[0][1][b"dl:error"]
        else:
            assert dead == []
            assert [kw["status"] for _, kw in received] == ["paid", "new"]
    finally:
        bus.close()
