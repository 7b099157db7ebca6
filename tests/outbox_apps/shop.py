"""An app that fires into the outbox: an API, and a table of its own."""

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lightbus_sync import Api, Event


class ShopApi(Api):
    order_placed = Event(parameters=("order_id", "amount"))
    order_cancelled = Event(parameters=("order_id",))

    class Meta:
        name = "shop"


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    amount: Mapped[int] = mapped_column(sa.Integer)
