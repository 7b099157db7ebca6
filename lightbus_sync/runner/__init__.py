"""The listener runner (see runner.py)."""

from ..keys import dead_letter_stream
from .runner import Runner

__all__ = ["Runner", "dead_letter_stream"]
