"""Calls a checker must refuse on the typed path (``tests/test_typing.py`` runs mypy on
this file and expects exactly the errors marked ``# E: <code>``)."""

from __future__ import annotations

import datetime

import lightbus_sync

from billing_api import BillingApi

bus = lightbus_sync.create()
now = datetime.datetime.now(datetime.timezone.utc)
billing = bus.api(BillingApi)
billing.invoice_paid.fire(invoice_id="7", amount=1.0, paid_at=now)  # E: arg-type
billing.invoice_paid.fire(invoice_id=7, amount=1.0)  # E: call-arg
billing.invoice_paid.fire(invoice_id=7, amount=1.0, paid_at=now, nte="x")  # E: call-arg
bus.my_company.auth.user_created.fire(username="adam").no_such_field  # E: attr-defined
lightbus_sync.Evnt  # E: attr-defined
