"""The bus: ``create()``, ``bus.<api>.<event>.fire()``, and the client objects behind them.

``fire()`` reads top to bottom: check the arguments against the definition, encode
them by the wire rules, ``XADD`` (retried within ``event_fire_timeout``), return the
``EventMessage``. Nothing is written when the check fails.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import threading
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generic,
    Iterable,
    Mapping,
    Optional,
    ParamSpec,
    Protocol,
    TypeVar,
    Union,
    cast,
    overload,
)

import attrs
import redis

from .api import Api, ApiDefinition, EventDefinition, catalogue
from .config import RootConfig, default_process_name, load_config
from .errors import (
    InvalidApiDefinition,
    LightbusError,
    UnknownApi,
)
from .listeners import ListenerRegistry
from .message import EventMessage
from .names import check_api_name
from .observers import FireInfo, Observer, Observers
from .outgoing import EncodedEvent, OutgoingEvent
from .schema import SchemaRegistry, api_definition_from_schema
from .suggest import did_you_mean
from .transport import RedisTransport
from .keys import stream_key

if TYPE_CHECKING:
    from .listeners import Listener
    from .runner import Runner
    from .outbox.relay import OutboxRelay
    from .outbox.writer import OutboxView

logger = logging.getLogger(__name__)
_new_tuple = tuple.__new__  # FireInfo(...) without NamedTuple's Python-level __new__

#: Makes the transport of one Redis URL: ``factory(url, socket_timeout=...)``. The
#: default is ``RedisTransport``; tests pass another (see ``create(transport_factory=)``).
TransportFactory = Callable[..., Any]


@attrs.frozen
class TransportState:
    """What ``Bus.swap_transports`` set aside, for ``Bus.restore_transports``."""

    factory: TransportFactory
    transports: dict[str, Any]
    schemas: SchemaRegistry


P = ParamSpec("P")
A = TypeVar("A", bound=Api)


class BusPath(Protocol):
    """What a type checker sees for a name looked up at run time: ``bus.my_company``,
    ``bus.my_company.auth``, ``bus.auth.user_created``. Each step is another path, and
    an event's calls are known (``fire()`` returns an ``EventMessage``), with its
    parameters unchecked. For checked parameters, use ``bus.api(AuthApi)`` with events
    in the typed form (see docs/typing.md)."""

    def __getattr__(self, name: str) -> "BusPath": ...

    def fire(self, *args: Any, **kwargs: Any) -> EventMessage: ...

    async def fire_async(self, *args: Any, **kwargs: Any) -> EventMessage: ...

    def fire_many(self, calls: Iterable[Mapping[str, Any]]) -> list[EventMessage]: ...

    def listen(self, handler: Callable[..., Any], *, listener_name: Optional[str] = None,
               **options: Any) -> "Listener": ...

    def event(self, name: str) -> "EventClient[...]": ...


class Bus:
    """A bus: configuration, the APIs it knows, its Redis transports and its listeners.

    One bus is meant to be shared by every thread of a process (a threaded Flask app,
    worker threads); it is safe to use after ``os.fork()``.
    """

    def __init__(
        self,
        config: RootConfig,
        service_name: str,
        process_name: str,
        *,
        transport_factory: Optional[TransportFactory] = None,
    ) -> None:
        self.config = config
        self.service_name = service_name
        self.process_name = process_name
        self._registered: dict[str, ApiDefinition] = {}
        self._transport_factory: TransportFactory = transport_factory or RedisTransport
        self._transports: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._api_clients: dict[str, "ApiClient"] = {}
        self.listeners = ListenerRegistry(service_name)
        self.schemas = self._new_schema_registry()
        self._remote_definitions: dict[str, tuple[int, ApiDefinition]] = {}
        self.start_hooks: list[Callable[[], Any]] = []
        self.stop_hooks: list[Callable[[], Any]] = []
        #: Observers of this bus (see lightbus_sync.observers): told of every fire, and
        #: of what every runner of this bus does.
        self.observers = Observers()

    def _new_schema_registry(self) -> SchemaRegistry:
        config = self.config
        return SchemaRegistry(
            transport=lambda: self.transport_for_url(config.bus.schema.redis.url),
            ttl=config.bus.schema.ttl,
            local_definition=self.local_definition,
            strict_validation=lambda api_name: config.api(api_name).strict_validation,
        )

    def add_observer(self, observer: Observer) -> Observer:
        """Tell ``observer`` of this bus's fires and of what its runners do."""
        return self.observers.add(observer)

    def __repr__(self) -> str:
        return f"<Bus service={self.service_name!r} process={self.process_name!r}>"

    # --- APIs --------------------------------------------------------------------------

    def register(self, api_class: type) -> type:
        """Register an ``Api`` subclass with this bus (usable as a class decorator)."""
        definition = getattr(api_class, "definition", None)
        if not isinstance(definition, ApiDefinition):
            raise InvalidApiDefinition(f"{api_class!r} is not an Api subclass with a Meta.name")
        with self._lock:
            self._registered[definition.name] = definition
            self._api_clients.pop(definition.name, None)
            self.__dict__.pop(definition.name, None)  # the attribute cached by __getattr__
        return api_class

    def known_api_names(self) -> list[str]:
        """Local API names, plus remote ones whose schemas this process has loaded."""
        return sorted(set(self._registered) | set(catalogue.names()) | set(self.schemas.remote_names()))

    def local_definition(self, name: str) -> Optional[ApiDefinition]:
        """The definition of an API this process defines (registered or catalogued)."""
        return self._registered.get(name) or catalogue.get(name)

    def local_event(self, api_name: str, event_name: str) -> Optional[EventDefinition]:
        """The definition of an event of an API this process defines, else None."""
        definition = self.local_definition(api_name)
        return None if definition is None else definition.events.get(event_name)

    def local_apis(self) -> list[ApiDefinition]:
        """The APIs this process defines, by name."""
        names = sorted(set(self._registered) | set(catalogue.names()))
        return [d for d in (self.local_definition(n) for n in names) if d is not None]

    def get_api_definition(self, name: str) -> ApiDefinition:
        """A local definition, else one rebuilt from the API's schema on the bus."""
        definition = self.local_definition(name)
        if definition is not None:
            return definition
        document, unreadable = self._remote_document(name)
        if document is not None:
            cached = self._remote_definitions.get(name)
            if cached is not None and cached[0] == id(document):
                return cached[1]
            definition = api_definition_from_schema(name, document)
            self._remote_definitions[name] = (id(document), definition)
            return definition
        known = self.known_api_names()
        raise UnknownApi(
            f"no API named {name!r} is defined in this process, and no schema for it is on the bus "
            f"(is the service that defines it running? or load schema files with --schema); "
            f"known APIs: {', '.join(known) or '(none)'}" + did_you_mean(name, known) + unreadable
        )

    def _remote_document(self, name: str) -> tuple[Optional[dict[str, Any]], str]:
        """(the schema on the bus for ``name`` or None, why the bus could not be asked).

        A lookup of an unknown API must fail as ``UnknownApi`` (an ``AttributeError``:
        ``hasattr(bus, 'x')`` keeps working), not with redis-py's errors when Redis is down.
        """
        try:
            return self.schemas.remote_document(name), ""
        except (redis.RedisError, OSError, LightbusError) as exc:
            return None, (
                f"; the schemas on the bus could not be read "
                f"({type(exc).__name__}: {exc})"
            )

    @overload
    def api(self, name: str) -> "ApiClient": ...

    @overload
    def api(self, name: type[A]) -> A: ...

    def api(self, name: Union[str, type[Api]]) -> Union["ApiClient", Api]:
        """The client for the API called ``name`` (``bus.api('my_company.auth')``); or,
        given an ``Api`` class, that class bound to this bus (``bus.api(AuthApi)``),
        whose events are this bus's clients, typed for a checker."""
        if isinstance(name, type):
            if not issubclass(name, Api) or not hasattr(name, "definition"):
                raise InvalidApiDefinition(f"{name!r} is not an Api subclass with a Meta.name")
            return name._bound(self._client_of(name.definition))
        return self._named_client(name)

    def _client_of(self, definition: ApiDefinition) -> "ApiClient":
        """The client of a class's own definition: the cached one of its name when the
        name resolves to it (the usual case), else one of its own."""
        if self.local_definition(definition.name) is definition:
            return self._named_client(definition.name)
        return ApiClient(self, definition)

    def _named_client(self, name: str) -> "ApiClient":
        client = self._api_clients.get(name)
        if client is None:
            try:
                definition = self.get_api_definition(name)
            except UnknownApi:
                check_api_name(name)  # a name that could never work: say why (InvalidName)
                raise
            client = ApiClient(self, definition)
            self._api_clients[name] = client
        return client

    def __getattr__(self, name: str) -> BusPath:
        if name.startswith("_"):
            raise AttributeError(name)
        found = _resolve(self, name)
        if isinstance(found, ApiClient):
            # bus.api() keeps this client until register() replaces it (which drops this
            # too): from now on ``bus.<name>`` is a plain attribute, not a look-up.
            self.__dict__[name] = found
        return found

    # --- transports --------------------------------------------------------------------

    def transport_for(self, api_name: str) -> RedisTransport:
        """The transport of an API's configured Redis URL (one per distinct URL)."""
        settings = self.config.api(api_name).redis
        return self.transport_for_url(settings.url, settings.socket_timeout)

    def transport_for_url(self, url: str, socket_timeout: Optional[float] = None) -> RedisTransport:
        """The transport of ``url`` (made once by the transport factory)."""
        transport = self._transports.get(url)
        if transport is None:
            with self._lock:
                transport = self._transports.get(url)
                if transport is None:
                    timeout = socket_timeout or self.config.api("default").redis.socket_timeout
                    transport = self._transport_factory(url, socket_timeout=timeout)
                    self._transports[url] = transport
        return transport  # type: ignore[no-any-return]  # what the factory makes stands in for one

    def swap_transports(self, factory: TransportFactory) -> TransportState:
        """Make every transport with ``factory`` from now on, with a fresh schema
        registry (schemas are published anew through the new transports). The current
        transports are set aside, not closed: ``restore_transports(state)`` puts them
        back. The seam ``lightbus_sync.testing.record_events`` uses."""
        with self._lock:
            state = TransportState(self._transport_factory, self._transports, self.schemas)
            self._transport_factory = factory
            self._transports = {}
            self.schemas = self._new_schema_registry()
        return state

    def restore_transports(self, state: TransportState) -> None:
        """Undo ``swap_transports``: close the transports made since, and put back the
        factory, transports and schema registry of ``state``."""
        with self._lock:
            made, self._transports = self._transports, dict(state.transports)
            replaced, self.schemas = self.schemas, state.schemas
            self._transport_factory = state.factory
        replaced.stop()
        for transport in made.values():
            transport.close()

    def close(self) -> None:
        """Close every Redis connection this bus opened. Idempotent."""
        self.schemas.stop()
        with self._lock:
            transports = list(self._transports.values())
            self._transports.clear()
        for transport in transports:
            transport.close()

    # --- listening (see listeners.py and runner/) ----------------------------------------

    def listen_many(
        self, events: Iterable["EventClient[...]"], handler: Callable[..., Any], *, listener_name: str, **options: Any
    ) -> "Listener":
        """One listener (one consumer group) for several events: ``handler`` gets each."""
        return self.listeners.add(list(events), handler, listener_name=listener_name, **options)

    def _notify_fired(self, messages: list[EventMessage]) -> None:
        observers = self.observers
        if observers.fire_observed:  # the event is written: the fan-out never raises
            for message in messages:
                observers.on_fired(message)

    def on_start(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        """Decorator: run ``hook()`` when a runner starts, before it reads."""
        self.start_hooks.append(hook)
        return hook

    def on_stop(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        """Decorator: run ``hook()`` after a runner has stopped."""
        self.stop_hooks.append(hook)
        return hook

    def start_listener_thread(self, **options: Any) -> "Runner":
        """Run this bus's listeners in background (daemon) threads; returns a handle with
        ``stop(timeout)``, ``is_alive()``, usable as a context manager."""
        from .runner import Runner

        runner = Runner(self, **options)
        runner.start()
        return runner

    def listening(self, **options: Any) -> "Runner":
        """``with bus.listening(): ...``: listeners run for the block's duration."""
        return self.start_listener_thread(**options)

    # --- the transactional outbox (see outbox/) -------------------------------------------

    def outbox(self, session: Any) -> "OutboxView":
        """This bus's APIs, firing into the outbox table through ``session`` (a SQLAlchemy
        ``Session`` or ``Connection``) inside its transaction: the events are published
        (by a relay) if and only if the transaction commits."""
        from .outbox.writer import OutboxView

        return OutboxView(self, session)

    def start_outbox_relay(self, url: Any = None, **options: Any) -> "OutboxRelay":
        """Relay the outbox at ``url`` (a SQLAlchemy URL or Engine; default
        ``bus.outbox.url`` / ``$LIGHTBUS_OUTBOX_URL``) to Redis from a daemon thread;
        returns the started relay (``stop()``, usable as a context manager)."""
        from .outbox.relay import relay_for_bus

        relay = relay_for_bus(self, url, **options)
        relay.start()
        return relay


def _resolve(bus: Bus, dotted: str) -> BusPath:
    """The client or namespace named ``dotted``; typed as a ``BusPath`` (each is one
    shape of a path, which a checker cannot tell apart)."""
    if bus.local_definition(dotted) is not None or dotted in bus.schemas.remote_names():
        return cast(BusPath, bus.api(dotted))
    prefix = dotted + "."
    if any(name.startswith(prefix) for name in bus.known_api_names()):
        return cast(BusPath, ApiNamespace(bus, dotted))
    if bus._remote_document(dotted)[0] is None:  # loads the bus's schemas once more
        if any(name.startswith(prefix) for name in bus.known_api_names()):
            return cast(BusPath, ApiNamespace(bus, dotted))
    return cast(BusPath, bus.api(dotted))  # raises UnknownApi with suggestions


class ApiNamespace:
    """The ``my_company`` in ``bus.my_company.auth``: a prefix of dotted API names."""

    def __init__(self, bus: Bus, prefix: str) -> None:
        self._bus = bus
        self._prefix = prefix

    def __getattr__(self, name: str) -> BusPath:
        if name.startswith("_"):
            raise AttributeError(name)
        return _resolve(self._bus, f"{self._prefix}.{name}")


class _InstanceFirst:
    """A read-only property that an instance attribute of the same name hides (a
    ``property`` would hide the instance's)."""

    def __init__(self, getter: Callable[[Any], Any]) -> None:
        self._getter = getter
        self.__doc__ = getter.__doc__

    def __get__(self, instance: Any, owner: type) -> Any:
        return self if instance is None else self._getter(instance)


class ApiClient:
    """``bus.auth``: gives the API's events as attributes (``bus.auth.user_created``)."""

    def __init__(self, bus: Bus, definition: ApiDefinition) -> None:
        self._bus = bus
        self._definition = definition
        self._events: dict[str, EventClient[...]] = {}
        # An event called `event` or `definition` (a Lightbus API may have one) wins
        # over this class's attributes of that name: `bus.api.event.fire()` works.
        for name in _SHADOWED & set(definition.events):
            self.__dict__[name] = ApiClient.event(self, name)

    @_InstanceFirst
    def definition(self) -> ApiDefinition:
        return self._definition

    def __repr__(self) -> str:
        return f"<ApiClient {self._definition.name}>"

    def event(self, name: str) -> "EventClient[...]":
        client = self._events.get(name)
        if client is None:
            client = EventClient(self._bus, self._definition.event(name))
            self._events[name] = client
        return client

    def __getattr__(self, name: str) -> BusPath:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._definition.events:
            client = self.__dict__[name] = ApiClient.event(self, name)  # a plain attribute from now on
            return cast(BusPath, client)
        nested = f"{self._definition.name}.{name}"
        if any(n == nested or n.startswith(nested + ".") for n in self._bus.known_api_names()):
            return _resolve(self._bus, nested)
        return cast(BusPath, ApiClient.event(self, name))  # raises UnknownEvent with suggestions


_SHADOWED = frozenset({"event", "definition"})


class EventClient(Generic[P]):
    """``bus.auth.user_created``: fire it, or listen to it.

    Generic in the event's parameters for a type checker: ``EventClient[...]`` (any
    keyword arguments) for an event looked up by name, the declared ones for an event
    in the typed form reached through ``bus.api(AuthApi)``."""

    def __init__(self, bus: Bus, definition: EventDefinition) -> None:
        self.bus = bus
        self.definition = definition
        api_config = bus.config.api(definition.api_name)
        settings = api_config.redis
        self.stream = stream_key(definition.api_name, definition.name, settings.stream_use)
        self._max_length = settings.max_stream_length
        self._fire_timeout = api_config.event_fire_timeout
        self._validate_outgoing = api_config.validate.outgoing
        self._max_entry_size = settings.max_entry_size
        self._replication = settings.replication
        self._is_local = bus.local_definition(definition.api_name) is not None
        self._url, self._socket_timeout = settings.url, settings.socket_timeout
        api_name, name = definition.api_name, definition.name
        self._outgoing = OutgoingEvent(definition, self._validate_outgoing,
                                       lambda: bus.schemas.validator(api_name, name), self._max_entry_size)

    def __repr__(self) -> str:
        return f"<EventClient {self.definition.canonical_name}>"

    @property
    def canonical_name(self) -> str:
        return self.definition.canonical_name

    def encode(self, /, *args: P.args, **kwargs: P.kwargs) -> EncodedEvent:
        """Check a call as ``fire()`` does and build its entry. Writes nothing. Raises
        the ``InvalidFireCall`` subclass ``fire()`` would."""
        return self._encode(args, kwargs)

    def _encode(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> EncodedEvent:
        return self._outgoing.encode(args, kwargs)

    def encode_many(self, calls: Iterable[Mapping[str, Any]]) -> list[EncodedEvent]:
        """``encode()`` each of ``fire_many()``'s calls (mappings of parameters); any bad
        call raises (its index in the message) before anything is written."""
        return self._outgoing.encode_many(calls)

    def _transport(self) -> RedisTransport:
        """``bus.transport_for(api)``, without the configuration look-up once it exists."""
        transport = self.bus._transports.get(self._url)
        return transport if transport is not None else self.bus.transport_for_url(self._url, self._socket_timeout)

    def _publish_schema_once(self) -> None:
        """The first fire of a local API publishes its schema (the registry remembers)."""
        if self._is_local:
            self.bus.schemas.ensure_published(self.definition.api_name)

    def fire(self, *args: P.args, **kwargs: P.kwargs) -> EventMessage:
        """Check the call, write one entry with XADD, return the fired ``EventMessage``.

        Blocks until Redis has the entry (with ``min_replicas: N``, until N replicas have
        it too). Raises an ``InvalidFireCall`` subclass (nothing written) for a bad call,
        ``BusUnavailable`` if Redis stays unreachable for ``event_fire_timeout`` seconds,
        ``ReplicationNotConfirmed`` (a ``BusUnavailable``) if the replicas do not confirm
        within ``min_replicas_timeout``, ``RedisOutOfMemory`` (at once, nothing written) if
        Redis is over its ``maxmemory`` and refuses writes (``OOM``), ``TransportError`` if
        Redis refuses the write for another reason (an ACL denial...). The first fire of
        an API publishes its schema.
        """
        definition = self.definition
        event_id, values, fields = self._outgoing.encode(args, kwargs)
        transport = self._transport()
        observers = self.bus.observers
        manager = None
        if observers.fire_wrapped:
            manager = observers.firing_or_none(
                _new_tuple(FireInfo, (self.stream, definition.api_name, definition.name, (event_id,), "fire")))
        if manager is None:
            stream_id = transport.add_event(self.stream, fields, self._max_length, self._fire_timeout,
                                            self._replication)
        else:
            with manager as added:
                if added:
                    fields.update(added)
                stream_id = transport.add_event(self.stream, fields, self._max_length, self._fire_timeout,
                                                self._replication)
        self._publish_schema_once()
        message = EventMessage(
            event_id, definition.api_name, definition.name, definition.version, values, self.stream, stream_id
        )
        if observers.fire_observed:
            observers.on_fired(message)  # the event is written: this never raises
        return message

    async def fire_async(self, *args: P.args, **kwargs: P.kwargs) -> EventMessage:
        """``fire()`` for asyncio code: runs the blocking write in the default executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.fire, *args, **kwargs))

    def fire_many(self, calls: Iterable[Mapping[str, Any]]) -> list[EventMessage]:
        """Fire many events of this kind in one pipelined round trip.

        Every call is checked first; if any is bad, nothing is written. The writes are
        not atomic: on ``BusUnavailable`` or ``RedisOutOfMemory`` some may have landed
        (retries keep event ids). Raises as ``fire()`` does.
        """
        definition = self.definition
        prepared = self.encode_many(calls)
        if not prepared:
            return []
        transport = self._transport()
        entries = [(self.stream, fields) for _, _, fields in prepared]
        observers = self.bus.observers
        if observers.fire_wrapped:
            fire = FireInfo(self.stream, definition.api_name, definition.name,
                            tuple(event_id for event_id, _, _ in prepared), "fire_many")
            with observers.firing(fire) as added:
                if added:
                    for _, fields in entries:
                        fields.update(added)
                stream_ids = transport.add_events(entries, self._max_length, self._fire_timeout, self._replication)
        else:
            stream_ids = transport.add_events(entries, self._max_length, self._fire_timeout, self._replication)
        self._publish_schema_once()
        messages = [
            EventMessage(event_id, definition.api_name, definition.name, definition.version, values, self.stream, sid)
            for (event_id, values, _), sid in zip(prepared, stream_ids)
        ]
        self.bus._notify_fired(messages)
        return messages

    def listen(self, handler: Callable[..., Any], *, listener_name: Optional[str] = None,
               **options: Any) -> "Listener":
        """Register ``handler`` to receive this event; see ``ListenerRegistry.add``."""
        return self.bus.listeners.add([self], handler, listener_name=listener_name, **options)


def _caller_module_name(depth: int) -> Optional[str]:
    frame = sys._getframe(depth)
    return frame.f_globals.get("__name__") if frame else None


def default_service_name(module_name: Optional[str]) -> str:
    """A stable service name from where the bus is created.

    ``auth_service.bus`` -> ``auth_service``; a top-level ``bus`` module -> the name of
    the directory holding it; a script -> the script's file name without ``.py`` (a
    script named ``bus.py`` -> its directory's name, as when imported; ``python -m
    pkg.mod`` -> ``pkg``).
    """
    module = sys.modules.get(module_name or "")
    file = getattr(module, "__file__", None)
    if module_name in (None, "__main__"):
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name and spec.name != "__main__":
            # `python -m auth_service.bus`: the same name as when imported
            return default_service_name_for_module(spec.name, file)
        script = file or (sys.argv[0] if sys.argv and sys.argv[0] else "")
        if not script or script.startswith("-"):
            return "lightbus_sync"  # `python -c`, an interactive session
        path = Path(script)
        if path.stem == "bus":  # `python auth_service/bus.py`: as `import bus` from there
            return path.resolve().parent.name or "bus"
        return path.stem or "lightbus_sync"
    return default_service_name_for_module(module_name, file)


def default_service_name_for_module(module_name: str, file: Optional[str]) -> str:
    """``auth_service.bus`` -> ``auth_service``; ``bus`` -> its directory's name."""
    top = module_name.split(".")[0]
    if top == "bus" and file:
        return Path(file).resolve().parent.name or "bus"
    return top


def create(
    config_file: Union[str, "os.PathLike[str]", None] = None,
    *,
    redis_url: Optional[str] = None,
    service_name: Optional[str] = None,
    process_name: Optional[str] = None,
    config: Optional[Mapping[str, Any]] = None,
    transport_factory: Optional[TransportFactory] = None,
) -> Bus:
    """Create a bus. Arguments override ``LIGHTBUS_*`` environment variables, which
    override the config file (``config_file`` or ``$LIGHTBUS_CONFIG``), which overrides
    defaults (Redis at ``redis://127.0.0.1:6379/0``).

    The service name names consumer groups (``{service}-{listener}``), so it must be
    stable: it defaults to the creating module's package (see ``default_service_name``).

    ``transport_factory(url, socket_timeout=...)`` makes the transport of each Redis URL
    (default ``RedisTransport``): a test seam, to put another transport in its place.
    """
    root = load_config(
        config_file, config=config, redis_url=redis_url, service_name=service_name, process_name=process_name
    )
    name = root.service_name or default_service_name(_caller_module_name(2))
    return Bus(root, name, root.process_name or default_process_name(), transport_factory=transport_factory)
