"""A read-only admin of the outbox backlog (with ``django.contrib.admin`` installed):
the events committed and not yet relayed, oldest first."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import admin

from .models import OutboxEntry


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    list_display = ("id", "stream", "api_name", "event_id", "waiting")
    list_filter = ("stream",)
    search_fields = ("event_id",)
    ordering = ("id",)

    @admin.display(description="waiting")
    def waiting(self, entry: OutboxEntry) -> str:
        return f"{max(time.time() - entry.created_at, 0):.1f} s"

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
