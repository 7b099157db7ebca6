"""lightbus_sync: reliable events between synchronous Python services over Redis
Streams, speaking the Lightbus 1.x wire format.

    import lightbus_sync as lightbus
    from lightbus_sync import Api, Event, Parameter

    class AuthApi(Api):
        user_created = Event(parameters=('username', 'email'))
        class Meta:
            name = 'auth'

    bus = lightbus.create()
    bus.auth.user_created.fire(username='adam', email='adam@example.com')
"""

# The public names are imported on first use (PEP 562), so that importing a submodule
# (the pytest plugin, the CLI) does not import the whole package with redis-py.
from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import NO_DEFAULT, Api, Event, Parameter
    from .bus import ApiClient, Bus, EventClient, create
    from .config import RootConfig, load_config
    from .errors import (
        AccessRefused,
        BusUnavailable,
        ConfigurationError,
        DeadLetter,
        DuplicateListener,
        InvalidApiDefinition,
        InvalidFireCall,
        InvalidIncomingEvent,
        InvalidListener,
        InvalidName,
        InvalidParameterValue,
        LightbusError,
        MalformedEntry,
        MissingParameter,
        OutboxTransactionError,
        PositionalArgumentsNotAllowed,
        RedisOutOfMemory,
        ReplicationNotConfirmed,
        SchemaMismatch,
        ScriptRefused,
        TransportError,
        UnexpectedParameter,
        UnknownApi,
        UnknownEvent,
        UnsupportedParameterType,
    )
    from .message import EventMessage
    from .observers import DeliveryInfo, Observer
    from .runner import Runner

_EXPORTS = {
    "Api": ".api",
    "Event": ".api",
    "NO_DEFAULT": ".api",
    "Parameter": ".api",
    "ApiClient": ".bus",
    "Bus": ".bus",
    "EventClient": ".bus",
    "create": ".bus",
    "RootConfig": ".config",
    "load_config": ".config",
    "AccessRefused": ".errors",
    "BusUnavailable": ".errors",
    "ConfigurationError": ".errors",
    "DeadLetter": ".errors",
    "DuplicateListener": ".errors",
    "InvalidApiDefinition": ".errors",
    "InvalidFireCall": ".errors",
    "InvalidIncomingEvent": ".errors",
    "InvalidListener": ".errors",
    "InvalidName": ".errors",
    "InvalidParameterValue": ".errors",
    "LightbusError": ".errors",
    "MalformedEntry": ".errors",
    "MissingParameter": ".errors",
    "OutboxTransactionError": ".errors",
    "PositionalArgumentsNotAllowed": ".errors",
    "RedisOutOfMemory": ".errors",
    "ReplicationNotConfirmed": ".errors",
    "SchemaMismatch": ".errors",
    "ScriptRefused": ".errors",
    "TransportError": ".errors",
    "UnexpectedParameter": ".errors",
    "UnknownApi": ".errors",
    "UnknownEvent": ".errors",
    "UnsupportedParameterType": ".errors",
    "EventMessage": ".message",
    "DeliveryInfo": ".observers",
    "Observer": ".observers",
    "Runner": ".runner",
}

__all__ = [
    "AccessRefused",
    "Api",
    "ApiClient",
    "Bus",
    "BusUnavailable",
    "ConfigurationError",
    "DeadLetter",
    "DeliveryInfo",
    "DuplicateListener",
    "Event",
    "EventClient",
    "EventMessage",
    "InvalidApiDefinition",
    "InvalidFireCall",
    "InvalidIncomingEvent",
    "InvalidListener",
    "InvalidName",
    "InvalidParameterValue",
    "LightbusError",
    "MalformedEntry",
    "MissingParameter",
    "NO_DEFAULT",
    "Observer",
    "OutboxTransactionError",
    "Parameter",
    "PositionalArgumentsNotAllowed",
    "RedisOutOfMemory",
    "ReplicationNotConfirmed",
    "RootConfig",
    "Runner",
    "SchemaMismatch",
    "ScriptRefused",
    "TransportError",
    "UnexpectedParameter",
    "UnknownApi",
    "UnknownEvent",
    "UnsupportedParameterType",
    "create",
    "load_config",
]


if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
