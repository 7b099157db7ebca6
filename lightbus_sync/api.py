"""Definitions: ``Api`` classes, their ``Event`` attributes and ``Parameter`` declarations.

The registration rule: every ``Api`` subclass with a ``Meta.name`` is recorded in a
process-wide catalogue when its class statement runs. A bus resolves ``bus.<name>``
against the APIs registered on it with ``bus.register()`` first, then against that
catalogue. So defining an API in the bus module, or importing the module that defines
it, is all it takes; ``bus.register()`` is there to be explicit (or to give one bus a
class that differs from the catalogue's).
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
import typing
from typing import (
    Any,
    Callable,
    ClassVar,
    Generic,
    Iterable,
    Mapping,
    Optional,
    ParamSpec,
    Protocol,
    Union,
    overload,
)

from .message import EventMessage

import attrs

from . import parameter_types
from .errors import (
    InvalidApiDefinition,
    InvalidName,
    InvalidParameterValue,
    MissingParameter,
    PositionalArgumentsNotAllowed,
    UnexpectedParameter,
    UnknownEvent,
)
from .names import check_api_name, check_event_name, check_parameter_name
from .suggest import did_you_mean

logger = logging.getLogger(__name__)


class _NoDefault:
    """Marks a parameter that has no default (and so is required)."""

    _instance: ClassVar[Optional["_NoDefault"]] = None

    def __new__(cls) -> "_NoDefault":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __bool__(self) -> bool:
        return False


NO_DEFAULT: Any = _NoDefault()


@attrs.frozen
class Parameter:
    """One declared parameter of an event: ``Parameter('is_admin', bool, default=False)``.

    ``type`` defaults to ``Any`` (any JSON-encodable value); a parameter with no
    ``default`` is required.
    """

    name: str
    type: Any = Any
    default: Any = NO_DEFAULT

    @property
    def is_required(self) -> bool:
        return self.default is NO_DEFAULT


def _parameters_of_function(function: Callable[..., Any], where: str) -> tuple[Parameter, ...]:
    """``@Event def user_created(*, username: str, email: str) -> None``: one
    ``Parameter`` per keyword-only parameter, its annotation the type (none: ``Any``)."""
    try:
        hints = typing.get_type_hints(function)
    except Exception as exc:  # NameError for an annotation naming nothing defined yet
        raise InvalidApiDefinition(f"{where}: cannot resolve the parameters' annotations: {exc}") from None
    result = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise InvalidApiDefinition(
                f"{where}: parameter {parameter.name!r} must be keyword-only, as fire() takes keyword "
                f"arguments only: def {function.__name__}(*, {parameter.name}: ...) -> None"
            )
        default = NO_DEFAULT if parameter.default is inspect.Parameter.empty else parameter.default
        result.append(Parameter(parameter.name, hints.get(parameter.name, Any), default))
    return tuple(result)


def _as_parameters(parameters: Any, where: str) -> tuple[Parameter, ...]:
    """Normalise ``Event(parameters=...)``: a bare string is ONE name, never its letters;
    a function gives its keyword-only parameters (the typed form, see ``Event``)."""
    if parameters is None:
        return ()
    if inspect.isfunction(parameters):
        parameters = _parameters_of_function(parameters, where)
    if isinstance(parameters, (str, Parameter)):
        parameters = (parameters,)
    if not isinstance(parameters, Iterable) or isinstance(parameters, Mapping):
        raise InvalidApiDefinition(
            f"{where}: parameters must be a tuple of names or Parameter(...) objects, "
            f"got {type(parameters).__name__}"
        )
    result: list[Parameter] = []
    for item in parameters:
        if isinstance(item, str):
            item = Parameter(item)
        elif not isinstance(item, Parameter):
            raise InvalidApiDefinition(
                f"{where}: each parameter must be a name or a Parameter(...), got {item!r}"
            )
        check_parameter_name(item.name, where)
        parameter_types.check_supported(item.type, f"{where}, parameter {item.name!r}")
        if item.default is None and parameter_types.make_checker(item.type)(None) is not None:
            # `Parameter('note', str, default=None)` means Optional[str], as in Lightbus.
            item = Parameter(item.name, Optional[item.type], None)
        if not item.is_required and item.type is not Any:
            problem = parameter_types.make_checker(item.type)(item.default)
            if problem is not None:
                raise InvalidApiDefinition(
                    f"{where}, parameter {item.name!r}: default {item.default!r} does not "
                    f"match its type: {problem}"
                )
        result.append(item)
    names = [p.name for p in result]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidApiDefinition(f"{where}: parameter(s) declared twice: {', '.join(duplicates)}")
    return tuple(result)


_IMMUTABLE = (str, int, float, bool, type(None), bytes, frozenset, tuple)


def _fresh_default(default: Any) -> Any:
    """A default value for one fire() call: mutable defaults (``[]``, ``{}``, records)
    are copied, so changing ``message.kwargs`` never changes the definition."""
    if type(default) in _IMMUTABLE:
        return default
    return copy.deepcopy(default)


P = ParamSpec("P")


class BoundEvent(Protocol[P]):
    """What ``bus.api(AuthApi).user_created`` is to a type checker: the bus's
    ``EventClient`` for the event (``lightbus_sync.bus``), its calls taking the event's
    declared parameters ``P``. (A protocol, so that definitions need not import the bus.)"""

    @property
    def canonical_name(self) -> str: ...

    def fire(self, *args: P.args, **kwargs: P.kwargs) -> EventMessage: ...

    async def fire_async(self, *args: P.args, **kwargs: P.kwargs) -> EventMessage: ...

    def fire_many(self, calls: Iterable[Mapping[str, Any]]) -> list[EventMessage]: ...

    def listen(self, handler: Callable[..., Any], *, listener_name: Optional[str] = None, **options: Any) -> Any: ...


class Event(Generic[P]):
    """An event attribute of an ``Api`` class, declared in one of two forms:

    ``user_created = Event(parameters=('username', Parameter('email', str)))``, the
    Lightbus form; or the typed form, a decorated function whose keyword-only
    parameters are the event's (its body is never run)::

        @Event
        def user_created(*, username: str, email: str, is_admin: bool = False) -> None:
            "A user signed up."

    Both define the same event. The typed form also tells a type checker the
    parameters of ``bus.api(AuthApi).user_created.fire(...)`` (see docs/typing.md).

    On the class, the attribute is the ``Event``; on an API bound to a bus
    (``bus.api(AuthApi)``) it is that bus's ``EventClient``.
    """

    @overload
    def __init__(self: "Event[P]", parameters: Callable[P, object]) -> None: ...

    @overload
    def __init__(self: "Event[...]", parameters: Union[Iterable[Union[str, Parameter]], str] = ()) -> None: ...

    def __init__(self, parameters: Any = ()) -> None:
        self._raw_parameters = parameters
        self.name: str = ""
        self.parameters: tuple[Parameter, ...] = ()
        if inspect.isfunction(parameters):
            self.__doc__ = parameters.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: Optional[type] = None) -> "Event[P]": ...

    @overload
    def __get__(self, instance: "Api", owner: Optional[type] = None) -> BoundEvent[P]: ...

    def __get__(self, instance: Optional["Api"], owner: Optional[type] = None) -> Any:
        if instance is None:
            return self
        return instance._api_client().event(self.name)

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.parameters)
        return f"Event({self.name or '?'}: {names})"


@attrs.frozen
class EventDefinition:
    """The resolved, immutable definition of one event of one API.

    ``bind()`` is the outgoing check: it returns the parameter values with defaults
    filled in, or raises before anything is written.
    """

    api_name: str
    name: str
    version: int
    parameters: tuple[Parameter, ...]
    _checkers: tuple[Any, ...] = attrs.field(eq=False, repr=False)
    _names: frozenset[str] = attrs.field(eq=False, repr=False)

    @property
    def canonical_name(self) -> str:
        return f"{self.api_name}.{self.name}"

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @classmethod
    def build(cls, api_name: str, name: str, version: int, parameters: tuple[Parameter, ...]) -> "EventDefinition":
        checkers = tuple(parameter_types.make_checker(p.type) for p in parameters)
        return cls(api_name, name, version, parameters, checkers, frozenset(p.name for p in parameters))

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Check a fire() call; return {name: value} in declaration order, defaults filled.

        Raises (and writes nothing) on positional arguments, unexpected or missing
        parameters, and values that do not match their declared type.
        """
        if args:
            raise PositionalArgumentsNotAllowed(
                f"{self.canonical_name}.fire() takes keyword arguments only "
                f"({self._signature()}), got {len(args)} positional argument(s)"
            )
        if not self._names.issuperset(kwargs):
            unexpected = [k for k in kwargs if k not in self._names]
            missing = [p.name for p in self.parameters if p.is_required and p.name not in kwargs]
            raise UnexpectedParameter(
                f"{self.canonical_name}: unexpected parameter(s) "
                f"{', '.join(repr(u) for u in unexpected)}; the event takes {self._signature()}"
                + did_you_mean(unexpected[0], missing or self.parameter_names)
                + (f"; missing: {', '.join(repr(m) for m in missing)}" if missing else "")
            )
        values: dict[str, Any] = {}
        for parameter, checker in zip(self.parameters, self._checkers):
            name = parameter.name
            if name in kwargs:
                value = kwargs[name]
                problem = checker(value)
                if problem is not None:
                    raise InvalidParameterValue(
                        f"{self.canonical_name}: parameter {name!r} "
                        f"expects {parameter_types.describe(parameter.type)}: {problem}"
                    )
                values[name] = value
            elif parameter.is_required:
                missing = [p.name for p in self.parameters if p.is_required and p.name not in kwargs]
                raise MissingParameter(
                    f"{self.canonical_name}: missing required parameter(s) "
                    f"{', '.join(repr(m) for m in missing)}; the event takes {self._signature()}"
                )
            else:
                values[name] = _fresh_default(parameter.default)
        return values

    def _signature(self) -> str:
        if not self.parameters:
            return "no parameters"
        parts = []
        for p in self.parameters:
            part = p.name if p.type is Any else f"{p.name}: {parameter_types.describe(p.type)}"
            if not p.is_required:
                part += f" = {p.default!r}"
            parts.append(part)
        return ", ".join(parts)


@attrs.frozen
class ApiDefinition:
    """The resolved definition of an API: its name, version and events by name."""

    name: str
    version: int
    events: Mapping[str, EventDefinition]
    api_class: Optional[type] = None

    def event(self, name: str) -> EventDefinition:
        try:
            return self.events[name]
        except KeyError:
            raise UnknownEvent(
                f"API {self.name!r} has no event {name!r}; its events are: "
                f"{', '.join(sorted(self.events)) or '(none)'}" + did_you_mean(name, self.events)
            ) from None


#: Attributes every Api class has (``AuthApi.definition``): not usable as event names.
_RESERVED_EVENT_NAMES = frozenset({"definition"})


class Api:
    """Base class of API definitions.

    ::

        class AuthApi(Api):
            user_created = Event(parameters=('username', 'email'))

            class Meta:
                name = 'auth'      # dotted names work too: 'my_company.auth'
                version = 1        # optional, carried on every event

    Defining the class records it in the process-wide catalogue (see module docs).
    ``bus.api(AuthApi)`` is the API bound to a bus: its events are that bus's
    ``EventClient``s, typed for a checker when declared in the typed form.
    """

    definition: ClassVar[ApiDefinition]
    #: The bus's ``ApiClient`` of this API on a bound instance (``bus.api(AuthApi)``).
    _client: Any = None

    @classmethod
    def _bound(cls, client: Any) -> "Api":
        """An instance of this class whose events are ``client``'s (``bus.api(AuthApi)``);
        the class's own ``__init__`` is not run."""
        instance = cls.__new__(cls)
        instance._client = client
        return instance

    def _api_client(self) -> Any:
        if self._client is None:
            raise InvalidApiDefinition(
                f"{type(self).__qualname__}() is not bound to a bus: use bus.api({type(self).__qualname__}) "
                f"to fire or listen to its events"
            )
        return self._client

    def __repr__(self) -> str:
        bound = f" on {self._client._bus!r}" if self._client is not None else ""
        return f"<{type(self).__qualname__} {self.definition.name!r}{bound}>"

    #: Each subclass's own ``class Meta``: ``name`` (required), ``version`` (default 1).
    Meta: ClassVar[type]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        meta = cls.__dict__.get("Meta")
        if meta is None or not getattr(meta, "name", None):
            raise InvalidApiDefinition(
                f"API class {cls.__qualname__} needs a Meta class with a name, e.g.\n"
                f"    class Meta:\n        name = 'auth'"
            )
        api_name = check_api_name(meta.name)
        if api_name == "default" or api_name.startswith("default."):
            raise InvalidName(
                f"API class {cls.__qualname__}: the name {api_name!r} is reserved (the config's "
                f"apis.default section applies to every API); choose another Meta.name"
            )
        version = getattr(meta, "version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise InvalidApiDefinition(
                f"API {api_name!r}: Meta.version must be a non-negative int, got {version!r}"
            )
        events: dict[str, EventDefinition] = {}
        for klass in reversed(cls.__mro__):
            for attr_name, value in vars(klass).items():
                if isinstance(value, Event):
                    check_event_name(attr_name, api_name)
                    if attr_name in _RESERVED_EVENT_NAMES:
                        raise InvalidName(
                            f"API {api_name!r}: an event cannot be called {attr_name!r} "
                            f"(the Api class uses that attribute); choose another name"
                        )
                    where = f"event {api_name}.{attr_name}"
                    value.parameters = _as_parameters(value._raw_parameters, where)
                    events[attr_name] = EventDefinition.build(api_name, attr_name, version, value.parameters)
        cls.definition = ApiDefinition(api_name, version, events, cls)
        catalogue.add(cls.definition)


class ApiCatalogue:
    """Process-wide record of defined APIs, by name. The latest definition of a name wins
    (a module reload redefines its classes); a name defined by two different modules is
    logged as a warning."""

    def __init__(self) -> None:
        self._apis: dict[str, ApiDefinition] = {}
        self._lock = threading.Lock()

    def add(self, definition: ApiDefinition) -> None:
        with self._lock:
            previous = self._apis.get(definition.name)
            if (
                previous is not None
                and previous.api_class is not None
                and definition.api_class is not None
                and previous.api_class.__module__ != definition.api_class.__module__
            ):
                logger.warning(
                    "API %r is defined by both %s.%s and %s.%s; the latter is used",
                    definition.name,
                    previous.api_class.__module__, previous.api_class.__qualname__,
                    definition.api_class.__module__, definition.api_class.__qualname__,
                )
            self._apis[definition.name] = definition

    def get(self, name: str) -> Optional[ApiDefinition]:
        return self._apis.get(name)

    def names(self) -> list[str]:
        return list(self._apis)


catalogue = ApiCatalogue()
