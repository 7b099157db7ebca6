"""Logging set-up for the command line: text or JSON lines on stderr.

Under systemd (``$JOURNAL_STREAM`` set) the journal adds timestamps, so text records
leave theirs out. Records carry ``event_id``, ``event``, ``listener`` and
``delivery_count`` where the runner knows them; the JSON format includes them.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys

_CONTEXT_FIELDS = ("event_id", "event", "listener", "delivery_count")


def iso_utc(created: float) -> str:
    """A record's time in ISO 8601, UTC, to the millisecond: ``2026-01-02T03:04:05.678Z``."""
    moment = datetime.datetime.fromtimestamp(created, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601 UTC, milliseconds), ``level``,
    ``logger``, ``message``, the event context where known, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _CONTEXT_FIELDS:
            if hasattr(record, field):
                data[field] = getattr(record, field)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    try:
        root.setLevel(level.upper())
    except ValueError:
        root.setLevel(logging.INFO)
        root.warning("unknown log level %r; using INFO", level)
