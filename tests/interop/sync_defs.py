"""lightbus_sync side: the APIs lightbus_sync defines in the interop tests.

- ``interop.sync_types``: fired by lightbus_sync, consumed by a real Lightbus worker;
- ``interop.shared``: consumed by a Lightbus worker and a lightbus_sync runner in one
  consumer group.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Dict, List, Optional
from uuid import UUID

import attrs

from lightbus_sync import Api, Event, Parameter

from interop_types import Address, Color, Point


@attrs.define
class Money:
    """An attrs class with a default (Lightbus 1.1.2 would drop the default from its schema)."""

    amount: Decimal
    currency: str = "EUR"


TYPED_PARAMETERS = (
    Parameter("s", str),
    Parameter("i", int),
    Parameter("f", float),
    Parameter("b", bool),
    Parameter("n", None),
    Parameter("opt", Optional[str]),
    Parameter("items", List[str]),
    Parameter("mapping", Dict[str, int]),
    Parameter("when", datetime),
    Parameter("day", date),
    Parameter("uid", UUID),
    Parameter("amount", Decimal),
    Parameter("color", Color),
    Parameter("address", Address),
    Parameter("flag", bool, default=False),
)


class SyncTypesApi(Api):
    typed = Event(parameters=TYPED_PARAMETERS)
    ping = Event()
    # Types whose schema lightbus_sync writes differently from Lightbus (tuple[X, ...],
    # attrs defaults) or that Lightbus casts specially (NamedTuple, bytes).
    extras = Event(parameters=(
        Parameter("numbers", tuple[int, ...]),
        Parameter("money", Money),
        Parameter("point", Point),
        Parameter("raw", bytes),
    ))

    class Meta:
        name = "interop.sync_types"
        version = 2


class SharedApi(Api):
    work = Event(parameters=(Parameter("n", int), Parameter("hang_in", str)))

    class Meta:
        name = "interop.shared"
