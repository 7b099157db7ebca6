"""The app's migration: the outbox, lease and inbox tables on SQLite and PostgreSQL (and
PostgreSQL's notify trigger), in step with the models, reversible."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connections


def tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return {name for name in connections[alias].introspection.table_names(cursor) if name.startswith("lightbus_")}


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
@pytest.mark.parametrize("alias", ["default", "pg"])
def test_the_migration_creates_the_tables_and_reverses(alias):
    assert tables(alias) == {"lightbus_outbox", "lightbus_outbox_lease", "lightbus_inbox"}
    with connections[alias].cursor() as cursor:
        constraints = connections[alias].introspection.get_constraints(cursor, "lightbus_inbox")
    primary = [c["columns"] for c in constraints.values() if c["primary_key"]]
    assert primary == [["listener_group", "event_id"]]
    if alias == "pg":
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'lightbus_outbox'::regclass")
            assert cursor.fetchall() == [("lightbus_outbox_notify",)]
    try:
        call_command("migrate", "lightbus_sync", "zero", database=alias, verbosity=0)
        assert tables(alias) == set()
    finally:
        call_command("migrate", "lightbus_sync", database=alias, verbosity=0)
    assert len(tables(alias)) == 3


@pytest.mark.django_db
def test_the_models_need_no_new_migration():
    call_command("makemigrations", "lightbus_sync", check=True, dry_run=True, verbosity=0)


def test_the_admin_shows_the_outbox_backlog_read_only():
    import time

    from django.contrib.admin import AdminSite
    from django.test import RequestFactory

    from lightbus_sync.contrib.django.admin import OutboxEntryAdmin
    from lightbus_sync.contrib.django.models import OutboxEntry

    model_admin = OutboxEntryAdmin(OutboxEntry, AdminSite())
    request = RequestFactory().get("/admin/")
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    entry = OutboxEntry(stream="shop.orders.*:stream", event_id="e1", created_at=time.time() - 90)
    assert model_admin.waiting(entry).startswith("90.")
    assert str(entry) == "shop.orders.*:stream e1"
