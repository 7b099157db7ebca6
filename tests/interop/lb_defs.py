"""Real Lightbus 1.1.2 side (imported only under the Lightbus virtualenv): the API
Lightbus defines (``interop.lb_types``, consumed by lightbus_sync)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Dict, List, Optional
from uuid import UUID

from lightbus import Api, Event, Parameter

from interop_types import Address, Color

TYPED_PARAMETERS = [
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
]


class LbTypesApi(Api):
    typed = Event(parameters=TYPED_PARAMETERS)
    ping = Event()

    class Meta:
        name = "interop.lb_types"
        version = 3

