"""Shared by both sides of the interop tests: stdlib only, importable by the real
Lightbus (its own virtualenv) and by lightbus_sync.

- ``Color`` and ``Address``: the Enum and the dataclass carried as parameters;
- ``SAMPLES``: the values fired in both directions (every parameter type both support);
- ``record()``: what every handler writes, one JSON line per event, to ``$INTEROP_OUT``.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Mapping, NamedTuple, Optional
from uuid import UUID


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Address:
    street: str
    city: str
    postcode: Optional[str] = None


class Point(NamedTuple):
    x: float
    y: float
    label: str = "origin"


#: The values fired. Every parameter is given except where noted; ``flag`` is left out
#: of the first sample when lightbus_sync fires it (its default then travels).
SAMPLES: list[dict[str, Any]] = [
    dict(
        s="zoë ☃ \"quoted\"",
        i=42,
        f=1.5,
        b=True,
        n=None,
        opt=None,
        items=["b", "a", "snowman ☃"],
        mapping={"z": 1, "a": 2},
        when=datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
        day=date(1990, 12, 31),
        uid=UUID("12345678-1234-5678-1234-567812345678"),
        amount=Decimal("1234.50"),
        color=Color.RED,
        address=Address("1 Main St", "Springfield"),
        flag=False,
    ),
    dict(
        s="",
        i=-7,
        f=-0.25,
        b=False,
        n=None,
        opt="present",
        items=[],
        mapping={},
        when=datetime(2030, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        day=date(2000, 2, 29),
        uid=UUID("9f2b6d6e-3c1a-4f57-8e0e-2b1f1c0d9a77"),
        amount=Decimal("-0.5"),
        color=Color.GREEN,
        address=Address("2 Side St", "Shelbyville", "12345"),
        flag=True,
    ),
]

_WRITE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT


def record(role: str, message: Any, params: Mapping[str, Any], state: str = "handled") -> None:
    """Append one JSON line describing a received event to ``$INTEROP_OUT``.

    One ``os.write`` on an ``O_APPEND`` descriptor per line, so lines written by
    several threads or processes never interleave.
    """
    line = json.dumps(
        {
            "role": role,
            "state": state,
            "id": message.id,
            "api": message.api_name,
            "event": message.event_name,
            "version": message.version,
            "pid": os.getpid(),
            "params": {k: {"type": type(v).__name__, "repr": repr(v)} for k, v in params.items()},
            "values": {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool, type(None)))},
        },
        sort_keys=True,
    )
    fd = os.open(os.environ["INTEROP_OUT"], _WRITE_FLAGS, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)
