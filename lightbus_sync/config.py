"""Configuration: attrs classes in Lightbus's shape, structured by cattrs.

Precedence: ``create()`` keyword arguments (``config=`` included) > environment
(``LIGHTBUS_REDIS_URL``, ``LIGHTBUS_SERVICE_NAME``, ``LIGHTBUS_PROCESS_NAME``,
``LIGHTBUS_CONFIG``, ``LIGHTBUS_OUTBOX_URL``) > config file (``.json`` JSON, ``.toml`` TOML, anything else YAML,
as Lightbus) > defaults. ``apis.<name>`` is deep-merged over ``apis.default``. Unknown
keys and bad values raise ``ConfigurationError`` naming the key's path
(``$.apis.default.event_transport.redis.batch_size: expected an integer, got str 'x'``).

Every key of Lightbus 1.1.2's config is accepted, so one file serves both; where
Lightbus allows ``null`` it means "the default" (a ``null`` section of ``apis.<name>``
inherits ``apis.default``'s). Keys for things lightbus_sync does not do (RPC and result
transports, plugins, ``connection_parameters``) are accepted and unused;
``serializer``/``deserializer`` must be the by-field ones, and the ``debug`` event
transport is refused. ``service_name``/``process_name`` may use Lightbus's placeholders
(``{hostname}``, ``{pid}``, ``{random4}``, ``{friendly}``...).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import re
import socket
import string
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, TypeVar, Union

import attrs
import cattrs

from .errors import ConfigurationError
from .names import check_api_name
from .redis_url import check_url, redact
from .keys import STREAM_PER_API, STREAM_PER_EVENT
from .replication import ReplicaWait
from .trimming import DEFAULT_GROUP_TTL, DEFAULT_TRIM_INTERVAL

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ENV_REDIS_URL = "LIGHTBUS_REDIS_URL"
ENV_SERVICE_NAME = "LIGHTBUS_SERVICE_NAME"
ENV_PROCESS_NAME = "LIGHTBUS_PROCESS_NAME"
ENV_CONFIG = "LIGHTBUS_CONFIG"
ENV_MODULE = "LIGHTBUS_MODULE"
ENV_OUTBOX_URL = "LIGHTBUS_OUTBOX_URL"

logger = logging.getLogger(__name__)


class _FieldError(ValueError):
    """A bad value for one field, raised by the validators below; the error report
    adds the field's name to the key path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _positive(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    if value is not None and value <= 0:
        raise _FieldError(attribute.name, f"must be > 0, got {value!r}")


def _non_negative(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    if value is not None and value < 0:
        raise _FieldError(attribute.name, f"must be >= 0, got {value!r}")


def _one_of(*choices: Any) -> Callable[[Any, "attrs.Attribute[Any]", Any], None]:
    def validate(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        if value not in choices:
            raise _FieldError(
                attribute.name, f"must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )

    return validate


def _redis_url(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    try:
        check_url(value)
    except ValueError as exc:
        raise _FieldError(attribute.name, str(exc)) from None


def _redacted_repr(url: Any) -> str:
    """A URL field's repr, its password replaced by ``***`` (reprs end up in logs)."""
    return repr(redact(url)) if isinstance(url, str) else repr(url)


def _redacted_params_repr(params: Any) -> str:
    """``connection_parameters``' repr, any ``password`` value replaced by ``***``."""
    if not isinstance(params, Mapping):
        return repr(params)
    return repr({k: "***" if "password" in str(k).lower() else v for k, v in params.items()})


# attrs converters for keys where Lightbus writes ``null`` for "the default". Named
# functions (not a factory), so that a type checker sees what each field holds.


def _100_if_none(value: Optional[int]) -> int:
    return 100 if value is None else value


def _event_redis_if_none(value: Optional["RedisEventTransportConfig"]) -> "RedisEventTransportConfig":
    return RedisEventTransportConfig() if value is None else value


def _event_transport_if_none(value: Optional["EventTransportSelector"]) -> "EventTransportSelector":
    return EventTransportSelector() if value is None else value


def _schema_redis_if_none(value: Optional["RedisSchemaTransportConfig"]) -> "RedisSchemaTransportConfig":
    return RedisSchemaTransportConfig() if value is None else value


def _schema_transport_if_none(value: Optional["SchemaTransportSelector"]) -> "SchemaTransportSelector":
    return SchemaTransportSelector() if value is None else value


_T = TypeVar("_T")


def _filled(value: Optional[_T]) -> _T:
    """A section the converters above always fill in (the annotation stays Optional, as
    the input may say ``null``)."""
    if value is None:  # pragma: no cover - the converters make this impossible
        raise ConfigurationError("internal error: a config section is missing after conversion")
    return value


def _ttl_zero_disables(value: Any) -> Any:
    # Lightbus: consumer_ttl 0 disables the clean-up of idle consumers.
    return math.inf if value == 0 else value


BY_FIELD_SERIALIZER = "lightbus.serializers.ByFieldMessageSerializer"
BY_FIELD_DESERIALIZER = "lightbus.serializers.ByFieldMessageDeserializer"
BLOB_SERIALIZER = "lightbus.serializers.BlobMessageSerializer"
BLOB_DESERIALIZER = "lightbus.serializers.BlobMessageDeserializer"


@attrs.frozen
class RedisEventTransportConfig:
    """``apis.<name>.event_transport.redis``: every key Lightbus 1.1.2 accepts, plus
    lightbus_sync's own (``socket_timeout``, ``block_ms``, ``max_entry_size``, ``group_ttl``,
    ``trim_interval``, ``min_replicas``, ``min_replicas_timeout``, ``min_replicas_fsync``).

    Accepted but unused (Lightbus's): ``connection_parameters`` (aioredis pool options),
    ``service_name`` / ``consumer_name`` (set the top-level ``service_name`` /
    ``process_name`` instead; a warning says so). ``serializer``/``deserializer`` must be
    Lightbus's by-field ones: that is the only wire format lightbus_sync speaks.
    """

    url: str = attrs.field(default=DEFAULT_REDIS_URL, validator=_redis_url, repr=_redacted_repr)
    service_name: Optional[str] = None
    consumer_name: Optional[str] = None
    connection_parameters: dict[str, Any] = attrs.field(factory=lambda: {"maxsize": 100}, repr=_redacted_params_repr)
    batch_size: int = attrs.field(default=100, validator=_positive)
    reclaim_batch_size: Optional[int] = attrs.field(
        default=100, converter=_100_if_none, validator=_positive
    )
    acknowledgement_timeout: float = attrs.field(default=60.0, validator=_positive)
    reclaim_interval: Optional[float] = attrs.field(default=None, validator=_positive)
    #: An explicit hard cap (``XADD ... MAXLEN ~ n``): None or 0 (the default) for none.
    #: Lightbus's default is 100000; lightbus_sync's is no cap, since a cap removes entries
    #: whether or not every consumer group has read them (see docs/concepts.md, "Trimming").
    max_stream_length: Optional[int] = attrs.field(default=None, validator=_non_negative)
    stream_use: str = attrs.field(default=STREAM_PER_API, validator=_one_of(STREAM_PER_API, STREAM_PER_EVENT))
    consumption_restart_delay: float = attrs.field(default=5.0, validator=_non_negative)
    #: seconds; 0 (as in Lightbus) disables the clean-up of idle consumers (stored as inf)
    consumer_ttl: float = attrs.field(default=2_592_000.0, converter=_ttl_zero_disables, validator=_non_negative)
    serializer: str = attrs.field(default=BY_FIELD_SERIALIZER, validator=_one_of(BY_FIELD_SERIALIZER))
    deserializer: str = attrs.field(default=BY_FIELD_DESERIALIZER, validator=_one_of(BY_FIELD_DESERIALIZER))
    socket_timeout: float = attrs.field(default=5.0, validator=_positive)
    block_ms: int = attrs.field(default=1000, validator=_positive)
    #: bytes; a larger event is refused by fire() and dead-lettered by listeners; 0: no limit
    max_entry_size: int = attrs.field(default=1_048_576, validator=_non_negative)
    #: seconds without an active consumer after which a consumer group stops holding back
    #: the trimming of its stream (a WARNING names it)
    group_ttl: float = attrs.field(default=DEFAULT_GROUP_TTL, validator=_positive)
    #: seconds between two trims of one stream by a runner
    trim_interval: float = attrs.field(default=DEFAULT_TRIM_INTERVAL, validator=_positive)
    #: fire() returns only once this many replicas hold the entry (WAIT); 0: no waiting
    min_replicas: int = attrs.field(default=0, validator=_non_negative)
    #: seconds fire() waits for min_replicas before raising ReplicationNotConfirmed
    min_replicas_timeout: float = attrs.field(default=1.0, validator=_positive)
    #: wait for min_replicas replicas to have fsynced the entry to their AOF (WAITAOF, Redis 7.2+)
    min_replicas_fsync: bool = False

    @property
    def replication(self) -> Optional["ReplicaWait"]:
        """The wait for replicas that writes carrying events make, or None (min_replicas 0)."""
        if not self.min_replicas:
            return None
        return ReplicaWait(self.min_replicas, self.min_replicas_timeout, self.min_replicas_fsync)

    @property
    def effective_reclaim_interval(self) -> float:
        """How often stale entries are reclaimed: ``reclaim_interval`` or a quarter of
        the acknowledgement timeout (at most 15 s)."""
        if self.reclaim_interval is not None:
            return self.reclaim_interval
        return min(self.acknowledgement_timeout / 4, 15.0)

    @property
    def effective_reclaim_batch_size(self) -> int:
        """``reclaim_batch_size`` (100 where the input said null: the converter fills it in)."""
        return _filled(self.reclaim_batch_size)


@attrs.frozen
class DebugTransportConfig:
    """Lightbus's ``debug`` transport (``{}``): accepted for RPCs, results and schemas,
    which lightbus_sync does not use; refused for events."""


@attrs.frozen
class EventTransportSelector:
    redis: Optional[RedisEventTransportConfig] = attrs.field(
        default=attrs.Factory(RedisEventTransportConfig),
        converter=_event_redis_if_none,
    )
    debug: Optional[DebugTransportConfig] = attrs.field(default=None)

    @debug.validator
    def _no_debug(self, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        if value is not None:
            raise _FieldError(
                "debug",
                "lightbus_sync has no debug event transport (events would go nowhere); "
                "configure event_transport.redis",
            )


@attrs.frozen
class RedisRpcTransportConfig:
    """``apis.<name>.rpc_transport.redis`` (Lightbus's RPCs: accepted, unused)."""

    url: str = attrs.field(default=DEFAULT_REDIS_URL, repr=_redacted_repr)
    connection_parameters: dict[str, Any] = attrs.field(factory=lambda: {"maxsize": 100}, repr=_redacted_params_repr)
    batch_size: int = 10
    serializer: str = BLOB_SERIALIZER
    deserializer: str = BLOB_DESERIALIZER
    rpc_timeout: int = 5
    rpc_retry_delay: int = 1
    consumption_restart_delay: int = 5


@attrs.frozen
class RpcTransportSelector:
    redis: Optional[RedisRpcTransportConfig] = None
    debug: Optional[DebugTransportConfig] = None


@attrs.frozen
class RedisResultTransportConfig:
    """``apis.<name>.result_transport.redis`` (Lightbus's RPC results: accepted, unused)."""

    url: str = attrs.field(default=DEFAULT_REDIS_URL, repr=_redacted_repr)
    connection_parameters: dict[str, Any] = attrs.field(factory=lambda: {"maxsize": 100}, repr=_redacted_params_repr)
    serializer: str = BLOB_SERIALIZER
    deserializer: str = BLOB_DESERIALIZER
    result_ttl: int = 60
    rpc_timeout: int = 5


@attrs.frozen
class ResultTransportSelector:
    redis: Optional[RedisResultTransportConfig] = None
    debug: Optional[DebugTransportConfig] = None


@attrs.frozen
class ValidateConfig:
    outgoing: bool = True
    incoming: bool = True


@attrs.frozen
class ApiConfig:
    """``apis.<name>`` (or ``apis.default``)."""

    event_transport: Optional[EventTransportSelector] = attrs.field(
        default=attrs.Factory(EventTransportSelector), converter=_event_transport_if_none
    )
    validate: ValidateConfig = attrs.Factory(ValidateConfig)
    strict_validation: bool = False
    cast_values: bool = True
    event_fire_timeout: float = attrs.field(default=5.0, validator=_positive)
    # Lightbus keys for RPCs, which lightbus_sync does not implement: accepted, unused.
    rpc_timeout: float = 5.0
    event_listener_setup_timeout: float = 1.0
    rpc_transport: Optional[RpcTransportSelector] = None
    result_transport: Optional[ResultTransportSelector] = None

    @property
    def redis(self) -> RedisEventTransportConfig:
        return _filled(_filled(self.event_transport).redis)


@attrs.frozen
class RedisSchemaTransportConfig:
    url: str = attrs.field(default=DEFAULT_REDIS_URL, validator=_redis_url, repr=_redacted_repr)
    connection_parameters: dict[str, Any] = attrs.field(factory=dict, repr=_redacted_params_repr)


@attrs.frozen
class SchemaTransportSelector:
    redis: Optional[RedisSchemaTransportConfig] = attrs.field(
        default=attrs.Factory(RedisSchemaTransportConfig),
        converter=_schema_redis_if_none,
    )
    debug: Optional[DebugTransportConfig] = None


@attrs.frozen
class SchemaConfig:
    human_readable: bool = True
    ttl: int = attrs.field(default=60, validator=_positive)
    max_file_size: int = 10_000_000
    transport: Optional[SchemaTransportSelector] = attrs.field(
        default=attrs.Factory(SchemaTransportSelector), converter=_schema_transport_if_none
    )

    @property
    def redis(self) -> RedisSchemaTransportConfig:
        """``transport.redis`` (the converters fill both in)."""
        return _filled(_filled(self.transport).redis)


@attrs.frozen
class RunnerConfig:
    """``bus.runner``: the listener runner (lightbus_sync's own section)."""

    threads: int = attrs.field(default=8, validator=_positive)
    prefetch: Optional[int] = attrs.field(default=None, validator=_positive)
    shutdown_timeout: float = attrs.field(default=30.0, validator=_non_negative)
    #: ``lightbus-sync run``: runner processes, each with ``threads`` threads (> 1: a
    #: supervising parent starts and restarts them; see lightbus_sync.supervisor).
    processes: int = attrs.field(default=1, validator=_positive)


def _database_url(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    if value is None:
        return
    from .outbox.urls import check_database_url

    try:
        check_database_url(value)
    except ValueError as exc:
        raise _FieldError(attribute.name, str(exc)) from None


@attrs.frozen
class OutboxConfig:
    """``bus.outbox``: the transactional outbox's relay (lightbus_sync's own section).

    ``url`` (a SQLAlchemy URL, or ``$LIGHTBUS_OUTBOX_URL``) names the database holding
    the outbox table; with it set, ``lightbus-sync run`` also relays that outbox.
    """

    url: Optional[str] = attrs.field(default=None, validator=_database_url)
    #: seconds between checks for new rows when no notification wakes the relay
    poll_interval: float = attrs.field(default=1.0, validator=_positive)
    #: rows claimed (and published in one script call) per stream and round
    batch_size: int = attrs.field(default=1000, validator=_positive)
    #: seconds Redis remembers a relayed event id, so a row relayed again is not re-added
    dedup_ttl: float = attrs.field(default=3600.0, validator=_positive)


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _log_level(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


@attrs.frozen
class BusSection:
    log_level: Optional[str] = attrs.field(default=None, converter=_log_level)
    schema: SchemaConfig = attrs.Factory(SchemaConfig)
    runner: RunnerConfig = attrs.Factory(RunnerConfig)
    outbox: OutboxConfig = attrs.Factory(OutboxConfig)

    @log_level.validator
    def _check_log_level(self, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        if value is not None and value not in LOG_LEVELS:
            raise _FieldError("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")


@attrs.frozen
class StatePluginConfig:
    """``plugins.internal_state`` (Lightbus's: accepted, unused)."""

    enabled: bool = False
    ping_enabled: bool = True
    ping_interval: int = 60


@attrs.frozen
class MetricsPluginConfig:
    """``plugins.internal_metrics`` (Lightbus's: accepted, unused)."""

    enabled: bool = False


@attrs.frozen
class PluginsConfig:
    internal_state: Optional[StatePluginConfig] = attrs.Factory(StatePluginConfig)
    internal_metrics: Optional[MetricsPluginConfig] = attrs.Factory(MetricsPluginConfig)


@attrs.frozen
class RootConfig:
    """The whole configuration. ``api(name)`` gives an API's effective section."""

    service_name: Optional[str] = None
    process_name: Optional[str] = None
    bus: BusSection = attrs.Factory(BusSection)
    apis: dict[str, ApiConfig] = attrs.Factory(lambda: {"default": ApiConfig()})
    plugins: PluginsConfig = attrs.Factory(PluginsConfig)

    def api(self, name: str) -> ApiConfig:
        return self.apis.get(name) or self.apis["default"]


_config_converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)


def _structure_validate(value: Any, _: type) -> ValidateConfig:
    if value is None:
        return ValidateConfig()
    if isinstance(value, bool):
        return ValidateConfig(outgoing=value, incoming=value)
    if isinstance(value, Mapping):
        unknown = set(value) - {"outgoing", "incoming"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}; use outgoing/incoming")
        for key in ("outgoing", "incoming"):
            if key in value and not isinstance(value[key], bool):
                raise TypeError(f"{key} must be true or false, got {value[key]!r}")
        return ValidateConfig(**value)
    raise TypeError(f"expected true/false or {{outgoing: ..., incoming: ...}}, got {value!r}")


def _strict_scalar(expected: tuple[type, ...], name: str) -> Callable[[Any, type], Any]:
    def structure(value: Any, _: type) -> Any:
        if isinstance(value, bool) and bool not in expected:
            raise TypeError(f"expected {name}, got {value!r}")
        if not isinstance(value, expected):
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r}")
        return value

    return structure


def _structure_mapping(value: Any, _: type) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__} {value!r}")
    return dict(value)


def _structure_debug(value: Any, _: type) -> DebugTransportConfig:
    if value is None or (isinstance(value, Mapping) and not value):
        return DebugTransportConfig()
    if isinstance(value, Mapping):
        raise ValueError(f"the debug transport takes no settings, got {', '.join(map(str, value))}")
    raise TypeError(f"expected {{}}, got {value!r}")


_config_converter.register_structure_hook(ValidateConfig, _structure_validate)
_config_converter.register_structure_hook(DebugTransportConfig, _structure_debug)
_config_converter.register_structure_hook_func(lambda tp: tp == dict[str, Any], _structure_mapping)
_config_converter.register_structure_hook(int, _strict_scalar((int,), "an integer"))
_config_converter.register_structure_hook(float, _strict_scalar((int, float), "a number"))
_config_converter.register_structure_hook(bool, _strict_scalar((bool,), "true or false"))
_config_converter.register_structure_hook(str, _strict_scalar((str,), "a string"))


def _format_exception(exc: BaseException, tp: Optional[type]) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key(s) {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, AttributeError) and str(exc).endswith("object has no attribute 'items'"):
        return "expected a mapping"
    if isinstance(exc, _FieldError):
        return f"\x1f{exc.field}\x1f{exc}"
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)
    return cattrs.v.format_exception(exc, tp)


_BRACKETED_KEY = re.compile(r"\[['\"]([^'\"]*)['\"]\]")


def _error_lines(exc: BaseException, label: str = "$") -> list[str]:
    """``$.apis.default.event_transport.redis.batch_size: expected an integer, got str 'x'``
    (``label`` replaces the ``$`` that stands for the top of the configuration)."""
    lines = []
    for line in cattrs.transform_error(exc, format_exception=_format_exception):
        message, _, path = line.rpartition(" @ ")
        if not _:
            message, path = line, "$"
        path = label + _BRACKETED_KEY.sub(lambda m: "." + m.group(1), path)[1:]
        if message.startswith("\x1f"):  # a validator's error: add its field to the path
            _, field, message = message.split("\x1f", 2)
            path = f"{path}.{field}"
        lines.append(f"{path}: {message}")
    return lines


def read_config_file(path: Union[str, "os.PathLike[str]"]) -> dict[str, Any]:
    """Read a config file into a dict: ``.json`` is JSON, ``.toml`` is TOML, anything
    else is YAML (needs PyYAML), as Lightbus reads any non-JSON file as YAML."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {str(path)!r}: {exc}") from exc
    suffix = path.suffix.lower()
    data: Any  # whatever the file holds (YAML may hold None, or a list)
    try:
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # the same parser, as a package (declared for Python < 3.11)
                import tomli as tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            try:
                import yaml
            except ImportError:
                raise ConfigurationError(
                    f"{path}: reading YAML needs PyYAML: pip install 'lightbus_sync[yaml]'"
                ) from None
            data = yaml.safe_load(text)
    except ConfigurationError:
        raise
    except Exception as exc:  # the parsers' own errors carry line numbers
        raise ConfigurationError(f"{path}: cannot parse: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``; a ``null`` over a section keeps the section (Lightbus
    writes ``null`` for "not configured here")."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _deep_merge(result[key], value)
        elif value is None and isinstance(result.get(key), Mapping):
            continue
        else:
            result[key] = copy.deepcopy(value)
    return result


def _section(parent: dict[str, Any], key: str) -> Optional[dict[str, Any]]:
    """``parent[key]`` as a dict to write into (created if missing or null); None if it
    holds something else (the structuring step then reports it)."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    elif isinstance(value, Mapping) and not isinstance(value, dict):
        value = parent[key] = dict(value)
    return value if isinstance(value, dict) else None


def _set_url_everywhere(raw: dict[str, Any], url: str) -> None:
    apis = _section(raw, "apis")
    if apis is not None:
        _section(apis, "default")
        for name in list(apis):
            _set_in(apis, (name, "event_transport", "redis", "url"), url)
    _set_in(raw, ("bus", "schema", "transport", "redis", "url"), url)


def _set_in(node: Optional[dict[str, Any]], path: tuple[str, ...], value: Any) -> None:
    """``node[a][b]...[z] = value``, creating missing sections; gives up quietly where a
    section holds something else (structuring reports that)."""
    for key in path[:-1]:
        if node is None:
            return
        node = _section(node, key)
    if node is not None:
        node[path[-1]] = value


_NAME_PLACEHOLDERS = ("hostname", "pid", "random4", "random8", "random16", "friendly")
_ADJECTIVES = ("amber", "brave", "calm", "dusty", "eager", "fancy", "gentle", "happy", "icy", "jolly",
               "kind", "lively", "merry", "noble", "odd", "proud", "quiet", "royal", "shy", "tidy")
_NOUNS = ("badger", "cloud", "delta", "ember", "falcon", "garden", "harbor", "island", "jungle",
          "king", "lake", "meadow", "night", "ocean", "pine", "river", "surf", "tiger", "valley", "wave")


def format_name(template: str, key: str, label: str = "$") -> str:
    """Expand Lightbus's name placeholders: ``{hostname}``, ``{pid}``, ``{random4}``,
    ``{random8}``, ``{random16}``, ``{friendly}`` (e.g. ``royal-surf-492``).

    Random ones change on every start, which gives a service a new consumer group each
    time (losing the events fired in between): a warning says so for ``service_name``.
    """
    if "{" not in template and "}" not in template:
        return template
    letters = "".join(random.choice(string.ascii_lowercase) for _ in range(16))
    values = {
        "hostname": socket.gethostname().lower(),
        "pid": os.getpid(),
        "random4": letters[:4],
        "random8": letters[:8],
        "random16": letters,
        "friendly": f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}",
    }
    try:
        name = template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigurationError(
            f"{label}.{key}: cannot expand {template!r} ({type(exc).__name__}: {exc}); the placeholders "
            f"are {', '.join('{' + p + '}' for p in _NAME_PLACEHOLDERS)}"
        ) from None
    if key == "service_name" and any(f"{{{p}}}" in template for p in ("random4", "random8", "random16", "friendly", "pid")):
        logger.warning(
            "service_name %r changes on every start (it names consumer groups, so events fired "
            "while the service is down would be missed); use a fixed name", template,
        )
    return name


def structure_config(raw: Mapping[str, Any], label: str = "$") -> RootConfig:
    """Turn a raw mapping into RootConfig, merging each ``apis.<name>`` over ``apis.default``.
    Error paths start with ``label`` (``$``, or the name of a setting holding the config)."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"config must be a mapping, got {type(raw).__name__}")
    raw = dict(raw)
    apis = raw.get("apis")
    if apis is None:
        apis = {}
    if not isinstance(apis, Mapping):
        raise ConfigurationError(
            f"config error(s):\n  {label}.apis: expected a mapping of API name -> settings, got {apis!r}"
        )
    default = apis.get("default")
    if default is None:
        default = {}
    merged_apis: dict[str, Any] = {"default": default}
    for name, section in apis.items():
        if name == "default":
            continue
        try:
            check_api_name(name)
        except ValueError as exc:
            raise ConfigurationError(f"config error(s):\n  {label}.apis.{name}: {exc}") from None
        if section is None:
            section = {}
        if not isinstance(section, Mapping) or not isinstance(default, Mapping):
            merged_apis[name] = section
        else:
            merged_apis[name] = _deep_merge(default, section)
    raw["apis"] = merged_apis
    try:
        root = _config_converter.structure(raw, RootConfig)
    except Exception as exc:
        raise ConfigurationError("config error(s):\n  " + "\n  ".join(_error_lines(exc, label))) from None
    return _apply_transport_names(root)


def _apply_transport_names(root: RootConfig) -> RootConfig:
    """Lightbus lets ``event_transport.redis.service_name`` / ``consumer_name`` override the
    top-level names for consumer groups; lightbus_sync has one pair of names per bus, so
    ``apis.default``'s apply (other APIs' differing values are warned about)."""
    default = root.apis["default"].redis
    changes: dict[str, Any] = {}
    if default.service_name:
        changes["service_name"] = default.service_name
    if default.consumer_name:
        changes["process_name"] = default.consumer_name
    for name, section in root.apis.items():
        for key in ("service_name", "consumer_name"):
            value = getattr(section.redis, key)
            if value and value != getattr(default, key):
                logger.warning(
                    "apis.%s.event_transport.redis.%s = %r is not used: lightbus_sync uses one %s "
                    "per bus (set it at the top level or in apis.default)", name, key, value, key,
                )
    return attrs.evolve(root, **changes) if changes else root


def load_config(
    config_file: Union[str, "os.PathLike[str]", Mapping[str, Any], None] = None,
    *,
    config: Optional[Mapping[str, Any]] = None,
    redis_url: Optional[str] = None,
    service_name: Optional[str] = None,
    process_name: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    label: str = "$",
) -> RootConfig:
    """Build the configuration from every source, highest precedence last applied:
    defaults < config file < environment < ``config=`` / keyword arguments.

    ``config_file`` is a path, or a mapping standing for a file's contents (a framework
    setting such as Django's ``LIGHTBUS_SYNC``): it ranks as a file. Error paths start
    with ``label``.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if isinstance(config_file, Mapping):
        raw = copy.deepcopy(dict(config_file))
    else:
        file_path = config_file or environ.get(ENV_CONFIG)
        if file_path:
            raw = read_config_file(file_path)
    for env_name, key in ((ENV_SERVICE_NAME, "service_name"), (ENV_PROCESS_NAME, "process_name")):
        if environ.get(env_name):
            raw[key] = environ[env_name]
    if environ.get(ENV_REDIS_URL):
        _set_url_everywhere(raw, environ[ENV_REDIS_URL])
    if environ.get(ENV_OUTBOX_URL):
        _set_in(raw, ("bus", "outbox", "url"), environ[ENV_OUTBOX_URL])
    if config:
        if not isinstance(config, Mapping):
            raise ConfigurationError(f"config= must be a mapping, got {type(config).__name__}")
        raw = _deep_merge(raw, config)
    if service_name is not None:
        raw["service_name"] = service_name
    if process_name is not None:
        raw["process_name"] = process_name
    if redis_url is not None:
        _set_url_everywhere(raw, redis_url)
    root = structure_config(raw, label)
    return attrs.evolve(
        root,
        service_name=format_name(root.service_name, "service_name", label) if root.service_name else root.service_name,
        process_name=format_name(root.process_name, "process_name", label) if root.process_name else root.process_name,
    )


def default_process_name() -> str:
    """``<hostname>-<pid>``: unique per live process. Set ``process_name`` for a name that
    survives restarts (so a restarted process drains its own pending entries first)."""
    return f"{socket.gethostname()}-{os.getpid()}"
