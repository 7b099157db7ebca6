"""The API and the tables of the outbox/inbox fault scenarios."""

import sqlalchemy as sa

from lightbus_sync import Api, Event


class LedgerApi(Api):
    entry_booked = Event(parameters=("n", "j"))

    class Meta:
        name = "ledger"


app_metadata = sa.MetaData()

#: What the producers' transactions write next to each event: (n, j) per event fired.
ledger = sa.Table(
    "ledger", app_metadata,
    sa.Column("n", sa.BigInteger, primary_key=True),
    sa.Column("j", sa.Integer, primary_key=True),
)

#: What the consumers' handlers write (no key: a duplicate effect would show as a second row).
effects = sa.Table(
    "effects", app_metadata,
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("j", sa.Integer, nullable=False),
)
