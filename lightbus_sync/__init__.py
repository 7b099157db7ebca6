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
    PositionalArgumentsNotAllowed,
    RedisOutOfMemory,
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

__version__ = "0.1.0"

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
    "Parameter",
    "PositionalArgumentsNotAllowed",
    "RedisOutOfMemory",
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
