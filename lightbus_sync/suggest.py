"""'Did you mean ...?' hints for mistyped names."""

from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(name: object, candidates: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest candidate, or an empty string
    (also for a ``name`` that is not a string: a mapping key given as a name)."""
    if not isinstance(name, str):
        return ""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
