"""Text for operators: aligned tables, durations, times, JSON."""

from __future__ import annotations

import datetime
import json
from typing import Any, Optional, Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """An aligned plain-text table; columns whose index is in ``right`` are right-aligned.
    Cells are ``str()``-ed; None shows as ``-``."""
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, value in enumerate(values):
            parts.append(value.rjust(widths[i]) if i in right else value.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def duration(seconds: Optional[float]) -> str:
    """``850ms``, ``12.3s``, ``5m03s``, ``2h05m``, ``3d04h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def timestamp(moment: Optional[datetime.datetime]) -> str:
    """``2024-05-01 10:00:00.123Z`` (UTC); ``-`` for None."""
    if moment is None:
        return "-"
    utc = moment.astimezone(datetime.timezone.utc)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso(moment: Optional[datetime.datetime]) -> Optional[str]:
    """ISO 8601 in UTC with milliseconds, for JSON; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_and_age(moment: Optional[datetime.datetime], now: float) -> str:
    """``2024-05-01 10:00:00.123Z (3m05s ago)``."""
    if moment is None:
        return "-"
    return f"{timestamp(moment)} ({duration(now - moment.timestamp())} ago)"


def shorten(value: Any, width: int) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def to_json_line(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)


def value_json(value: Any) -> str:
    """A parameter value, as compact JSON."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
