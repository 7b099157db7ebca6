"""The listener runner (see runner.py)."""

from .runner import Runner, dead_letter_stream

__all__ = ["Runner", "dead_letter_stream"]
