"""Rules for the names that appear on the bus (API, event, parameter, listener)."""

from __future__ import annotations

import re

from .errors import InvalidName

_IDENTIFIER = r"[A-Za-z][A-Za-z0-9_]*"
_API_NAME = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*$")
_EVENT_NAME = re.compile(rf"^{_IDENTIFIER}$")
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LISTENER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_api_name(name: object) -> str:
    """Return ``name`` if it is a dotted API name such as ``my_company.auth``."""
    if not isinstance(name, str) or not _API_NAME.match(name):
        raise InvalidName(
            f"Invalid API name {name!r}: use dot-separated identifiers such as "
            f"'auth' or 'my_company.auth' (letters, digits, underscores; each part starts "
            f"with a letter)"
        )
    return name


def check_event_name(name: object, api_name: str = "") -> str:
    if not isinstance(name, str) or not _EVENT_NAME.match(name):
        where = f" on API {api_name!r}" if api_name else ""
        raise InvalidName(
            f"Invalid event name {name!r}{where}: use an identifier starting with a letter"
        )
    return name


def check_parameter_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
        raise InvalidName(
            f"Invalid parameter name {name!r} in {where}: parameter names must be "
            f"Python identifiers"
        )
    return name


def check_listener_name(name: object) -> str:
    if not isinstance(name, str) or not _LISTENER_NAME.match(name):
        raise InvalidName(
            f"Invalid listener name {name!r}: use letters, digits, '_', '-' or '.', "
            f"starting with a letter or digit (it names a Redis consumer group)"
        )
    return name
