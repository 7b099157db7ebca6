"""The outbox's tables as Django models, in the layout of ``lightbus_sync.outbox.tables``
(the same table names, columns and indexes), so the relay reads what the ORM writes.

The inbox table (``lightbus_inbox``, keyed by listener group and event id) is created by
this app's migration and written with SQL (its key has two columns).
"""

from __future__ import annotations

from django.db import models


class OutboxEntry(models.Model):
    """An event fired through ``bus.outbox()`` whose transaction committed and that no
    relay has published yet: its API, stream key, event id and wire fields (JSON)."""

    id = models.BigAutoField(primary_key=True)
    api_name = models.CharField(max_length=255)
    stream = models.CharField(max_length=255)
    event_id = models.CharField(max_length=64)
    fields = models.TextField()
    created_at = models.FloatField(help_text="seconds since the epoch")

    class Meta:
        db_table = "lightbus_outbox"
        indexes = [models.Index(fields=["stream", "id"], name="lightbus_outbox_stream_id")]
        verbose_name = "outbox entry"
        verbose_name_plural = "outbox entries"

    def __str__(self) -> str:
        return f"{self.stream} {self.event_id}"


class OutboxLease(models.Model):
    """Where no row locks serve (SQLite), the relay holding this lease is the only one."""

    name = models.CharField(max_length=64, primary_key=True)
    owner = models.CharField(max_length=255)
    expires_at = models.FloatField(help_text="seconds since the epoch")

    class Meta:
        db_table = "lightbus_outbox_lease"
