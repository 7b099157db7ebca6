"""Stream entry ids (``<ms>-<seq>``): ordering and text."""

from __future__ import annotations

from typing import Union

ZERO_ID = "0-0"


def as_text(value: Union[str, bytes, None]) -> str:
    """A reply value as text ("" for None)."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_id(entry_id: Union[str, bytes]) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``: ids compare as these tuples.
    A bare ``"<ms>"`` reads as sequence 0. Raises ValueError for anything else."""
    ms, _, seq = as_text(entry_id).partition("-")
    return int(ms), int(seq or 0)
