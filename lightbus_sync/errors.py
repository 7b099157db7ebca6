"""Every exception lightbus_sync raises derives from :class:`LightbusError`.

Errors about a call that can be fixed by changing the call also derive from the
matching builtin (``TypeError``/``ValueError``/``AttributeError``), so code that
already catches those keeps working.
"""

from __future__ import annotations


class LightbusError(Exception):
    """Base class of every lightbus_sync error."""


# --- definitions ---------------------------------------------------------------------


class InvalidName(LightbusError, ValueError):
    """An API, event, parameter or listener name is not usable on the bus."""


class InvalidApiDefinition(LightbusError, TypeError):
    """An ``Api`` subclass or an ``Event`` is defined wrongly (missing Meta.name...)."""


class UnknownApi(LightbusError, AttributeError):
    """``bus.<name>`` names no API this bus knows."""


class UnknownEvent(LightbusError, AttributeError):
    """``bus.<api>.<name>`` names no event of that API."""


class UnsupportedParameterType(LightbusError, TypeError):
    """A parameter is declared with a type that cannot be carried on the bus."""


# --- firing --------------------------------------------------------------------------


class InvalidFireCall(LightbusError, TypeError):
    """Base class of the errors of a ``fire()`` call; nothing was written."""


class PositionalArgumentsNotAllowed(InvalidFireCall):
    """Events take keyword arguments only."""


class MissingParameter(InvalidFireCall):
    """A required parameter was not given."""


class UnexpectedParameter(InvalidFireCall):
    """A keyword argument names no parameter of the event."""


class InvalidParameterValue(InvalidFireCall):
    """A value does not match its parameter's declared type, or cannot be encoded."""


class SchemaMismatch(InvalidFireCall):
    """The event's parameters do not match the schema on the bus (outgoing validation)."""


class BusUnavailable(LightbusError, ConnectionError):
    """Redis could not be reached (or kept failing) within the allowed time.

    When fire() raises this, the event may or may not have been written: a retried
    write keeps its event id, so consumers can de-duplicate.
    """


# --- configuration -------------------------------------------------------------------


class ConfigurationError(LightbusError, ValueError):
    """A configuration file, environment variable or argument is wrong; the message
    names the key's path."""


# --- receiving -----------------------------------------------------------------------


class MalformedEntry(LightbusError, ValueError):
    """A stream entry cannot be decoded into an event (bad JSON, missing metadata...)."""


class InvalidIncomingEvent(LightbusError, ValueError):
    """A decoded event does not match its declared parameters (missing, extra,
    uncastable values)."""


class InvalidListener(LightbusError, TypeError):
    """``listen()`` was called with a handler or options that cannot work."""


class DuplicateListener(InvalidListener):
    """A listener name is used twice on one bus (names must be unique: they name
    consumer groups)."""


class DeadLetter(LightbusError):
    """Raise from a handler to move the event to the dead-letter stream at once,
    without further retries."""


class TransportError(LightbusError):
    """Redis refused a command for a reason retrying will not fix (wrong key type,
    ACL denial, a script error...)."""


class AccessRefused(TransportError):
    """Redis refuses this process what it needs: its password or user (at connection),
    or ACL permission for commands it must run (``missing``: e.g. ``HDEL on
    {shop.*:stream}:attempts``). Retrying does not help; ``lightbus-sync run`` exits 2."""

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


class ScriptRefused(TransportError):
    """Redis refused a command inside one of lightbus_sync's atomic scripts (an ACL
    denial, out of memory...). ``unchanged`` is True when the script wrote nothing (or
    undid what it wrote): the entry's state is as before. False: ``str()`` says what
    stayed changed."""

    def __init__(self, message: str, *, unchanged: bool) -> None:
        super().__init__(message)
        self.unchanged = unchanged


class RedisOutOfMemory(TransportError):
    """Redis refused a write with ``OOM``: its memory is over ``maxmemory`` and its
    policy (``noeviction``, the right one for streams) refuses writes rather than evict
    keys. Not retried: it lasts until memory is freed (consumers catch up and the
    streams are trimmed, or ``maxmemory`` is raised)."""
