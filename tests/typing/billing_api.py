"""An API in the typed form, as a user's service would define it (imported by the other
files here)."""

from __future__ import annotations

import datetime

from lightbus_sync import Api, Event


class BillingApi(Api):
    """The typed form: the checker knows each event's parameters."""

    @Event
    def invoice_paid(*, invoice_id: int, amount: float, paid_at: datetime.datetime, note: str = "") -> None:
        "An invoice was paid in full."

    class Meta:
        name = "billing"
