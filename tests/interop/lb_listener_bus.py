"""Real Lightbus bus module: listens to ``interop.sync_types.typed`` and ``.extras``, an API that only
lightbus_sync defines (Lightbus validates against the schema lightbus_sync published).

Run: lightbus run --bus lb_listener_bus --config lightbus.yaml (cwd: this directory).
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Dict, List, Optional
from uuid import UUID

import lightbus

from interop_types import Address, Color, Point, record

bus = lightbus.create()


def on_typed(
    event_message, s: str, i: int, f: float, b: bool, n: None, opt: Optional[str], items: List[str],
    mapping: Dict[str, int], when: datetime, day: date, uid: UUID, amount: Decimal,
    color: Color, address: Address, flag: bool = False,
):
    record("lightbus", event_message, dict(
        s=s, i=i, f=f, b=b, n=n, opt=opt, items=items, mapping=mapping, when=when, day=day,
        uid=uid, amount=amount, color=color, address=address, flag=flag,
    ))


def on_extras(event_message, numbers, money, point: Point, raw: bytes):
    # numbers (tuple[int, ...]) and money (an attrs class) stay unannotated: Lightbus
    # 1.1.2 cannot cast to either (IndexError past 2 items; "arbitrary class").
    record("lightbus", event_message, dict(numbers=numbers, money=money, point=point, raw=raw))


@bus.client.on_start()
def setup(client):
    bus.interop.sync_types.typed.listen(on_typed, listener_name="recorder")
    bus.interop.sync_types.extras.listen(on_extras, listener_name="extras_recorder")
