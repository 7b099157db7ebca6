"""Configuration: attrs classes in Lightbus's shape, structured by cattrs.

Precedence: ``create()`` keyword arguments > environment (``LIGHTBUS_REDIS_URL``,
``LIGHTBUS_SERVICE_NAME``, ``LIGHTBUS_PROCESS_NAME``, ``LIGHTBUS_CONFIG``) > config
file (YAML, JSON or TOML) > defaults. ``apis.<name>`` is deep-merged over
``apis.default``. Unknown keys and bad values raise ``ConfigurationError`` naming
the key's path (``$.apis.default.event_transport.redis.batch_size``).

Keys Lightbus defines but lightbus_sync does not use (RPC and result transports,
plugins, serializer names...) are accepted so one file serves both.
"""

from __future__ import annotations

import copy
import json
import os
import socket
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import attrs
import cattrs

from .errors import ConfigurationError
from .names import check_api_name
from .wire import STREAM_PER_API, STREAM_PER_EVENT

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ENV_REDIS_URL = "LIGHTBUS_REDIS_URL"
ENV_SERVICE_NAME = "LIGHTBUS_SERVICE_NAME"
ENV_PROCESS_NAME = "LIGHTBUS_PROCESS_NAME"
ENV_CONFIG = "LIGHTBUS_CONFIG"
ENV_MODULE = "LIGHTBUS_MODULE"


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class RedisEventTransportConfig:
    """``apis.<name>.event_transport.redis``: Lightbus's keys, plus lightbus_sync's own
    (``socket_timeout``, ``block_ms``, ``max_deliveries``, ``retry_backoff_min``,
    ``retry_backoff_max``)."""

    url: str = DEFAULT_REDIS_URL
    batch_size: int = attrs.field(default=100, validator=_positive)
    reclaim_batch_size: int = attrs.field(default=100, validator=_positive)
    acknowledgement_timeout: float = attrs.field(default=60.0, validator=_positive)
    reclaim_interval: Optional[float] = attrs.field(default=None, validator=_positive)
    max_stream_length: Optional[int] = attrs.field(default=100_000, validator=_non_negative)
    stream_use: str = attrs.field(
        default=STREAM_PER_API, validator=attrs.validators.in_((STREAM_PER_API, STREAM_PER_EVENT))
    )
    consumption_restart_delay: float = attrs.field(default=5.0, validator=_non_negative)
    consumer_ttl: float = attrs.field(default=2_592_000.0, validator=_positive)
    serializer: str = "lightbus.serializers.ByFieldMessageSerializer"
    deserializer: str = "lightbus.serializers.ByFieldMessageDeserializer"
    socket_timeout: float = attrs.field(default=5.0, validator=_positive)
    block_ms: int = attrs.field(default=1000, validator=_positive)

    @property
    def effective_reclaim_interval(self) -> float:
        """How often stale entries are reclaimed: ``reclaim_interval`` or a quarter of
        the acknowledgement timeout (at most 15 s)."""
        if self.reclaim_interval is not None:
            return self.reclaim_interval
        return min(self.acknowledgement_timeout / 4, 15.0)


@attrs.frozen
class EventTransportSelector:
    redis: RedisEventTransportConfig = attrs.Factory(RedisEventTransportConfig)


@attrs.frozen
class ValidateConfig:
    outgoing: bool = True
    incoming: bool = True


@attrs.frozen
class ApiConfig:
    """``apis.<name>`` (or ``apis.default``)."""

    event_transport: EventTransportSelector = attrs.Factory(EventTransportSelector)
    validate: ValidateConfig = attrs.Factory(ValidateConfig)
    strict_validation: bool = False
    cast_values: bool = True
    event_fire_timeout: float = attrs.field(default=5.0, validator=_positive)
    # Lightbus keys for RPCs, which lightbus_sync does not implement: accepted, unused.
    rpc_timeout: float = 5.0
    event_listener_setup_timeout: float = 5.0
    rpc_transport: Optional[dict[str, Any]] = None
    result_transport: Optional[dict[str, Any]] = None

    @property
    def redis(self) -> RedisEventTransportConfig:
        return self.event_transport.redis


@attrs.frozen
class RedisSchemaTransportConfig:
    url: str = DEFAULT_REDIS_URL


@attrs.frozen
class SchemaTransportSelector:
    redis: RedisSchemaTransportConfig = attrs.Factory(RedisSchemaTransportConfig)


@attrs.frozen
class SchemaConfig:
    human_readable: bool = True
    ttl: int = attrs.field(default=60, validator=_positive)
    max_file_size: int = 10_000_000
    transport: SchemaTransportSelector = attrs.Factory(SchemaTransportSelector)


@attrs.frozen
class RunnerConfig:
    """``bus.runner``: the listener runner (lightbus_sync's own section)."""

    threads: int = attrs.field(default=8, validator=_positive)
    prefetch: Optional[int] = attrs.field(default=None, validator=_positive)
    shutdown_timeout: float = attrs.field(default=30.0, validator=_non_negative)

    @property
    def effective_prefetch(self) -> int:
        """Entries read but not yet handled, at most: ``prefetch`` or 2 x threads."""
        return self.prefetch if self.prefetch is not None else 2 * self.threads


@attrs.frozen
class BusSection:
    log_level: Optional[str] = None
    schema: SchemaConfig = attrs.Factory(SchemaConfig)
    runner: RunnerConfig = attrs.Factory(RunnerConfig)


@attrs.frozen
class RootConfig:
    """The whole configuration. ``api(name)`` gives an API's effective section."""

    service_name: Optional[str] = None
    process_name: Optional[str] = None
    bus: BusSection = attrs.Factory(BusSection)
    apis: dict[str, ApiConfig] = attrs.Factory(lambda: {"default": ApiConfig()})
    plugins: Optional[dict[str, Any]] = None

    def api(self, name: str) -> ApiConfig:
        return self.apis.get(name) or self.apis["default"]


_config_converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)


def _structure_validate(value: Any, _: type) -> ValidateConfig:
    if isinstance(value, bool):
        return ValidateConfig(outgoing=value, incoming=value)
    if isinstance(value, Mapping):
        unknown = set(value) - {"outgoing", "incoming"}
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}; use outgoing/incoming")
        for key in ("outgoing", "incoming"):
            if key in value and not isinstance(value[key], bool):
                raise TypeError(f"{key} must be true or false, got {value[key]!r}")
        return ValidateConfig(**value)
    raise TypeError(f"expected true/false or {{outgoing, incoming}}, got {value!r}")


def _strict_scalar(expected: tuple[type, ...], name: str):
    def structure(value: Any, _: type) -> Any:
        if isinstance(value, bool) and bool not in expected:
            raise TypeError(f"expected {name}, got {value!r}")
        if not isinstance(value, expected):
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r}")
        return value

    return structure


_config_converter.register_structure_hook(ValidateConfig, _structure_validate)
_config_converter.register_structure_hook(int, _strict_scalar((int,), "an integer"))
_config_converter.register_structure_hook(float, _strict_scalar((int, float), "a number"))
_config_converter.register_structure_hook(bool, _strict_scalar((bool,), "true or false"))
_config_converter.register_structure_hook(str, _strict_scalar((str,), "a string"))


def read_config_file(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """Read a YAML (needs PyYAML), JSON or TOML config file into a dict."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {str(path)!r}: {exc}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigurationError(
                    f"{path}: reading YAML needs PyYAML: pip install 'lightbus_sync[yaml]'"
                ) from None
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigurationError(f"{path}: unknown config format; use .yaml, .yml, .json or .toml")
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
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _set_url_everywhere(raw: dict[str, Any], url: str) -> None:
    apis = raw.setdefault("apis", {})
    apis.setdefault("default", {})
    for section in apis.values():
        if isinstance(section, dict):
            section.setdefault("event_transport", {}).setdefault("redis", {})["url"] = url
    raw.setdefault("bus", {}).setdefault("schema", {}).setdefault("transport", {}).setdefault(
        "redis", {}
    )["url"] = url


def structure_config(raw: Mapping[str, Any]) -> RootConfig:
    """Turn a raw mapping into RootConfig, merging each ``apis.<name>`` over ``apis.default``."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"config must be a mapping, got {type(raw).__name__}")
    raw = dict(raw)
    apis = raw.get("apis") or {}
    if not isinstance(apis, Mapping):
        raise ConfigurationError("config error: $.apis must be a mapping of API name -> settings")
    default = apis.get("default") or {}
    merged_apis: dict[str, Any] = {"default": default}
    for name, section in apis.items():
        if name == "default":
            continue
        try:
            check_api_name(name)
        except ValueError as exc:
            raise ConfigurationError(f"config error @ $.apis.{name}: {exc}") from None
        if not isinstance(section, Mapping) or not isinstance(default, Mapping):
            merged_apis[name] = section
        else:
            merged_apis[name] = _deep_merge(default, section)
    raw["apis"] = merged_apis
    try:
        return _config_converter.structure(raw, RootConfig)
    except Exception as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            problems = cattrs.transform_error(exc)
        else:
            problems = [str(exc)]
        raise ConfigurationError("config error(s):\n  " + "\n  ".join(problems)) from None


def load_config(
    config_file: Union[str, os.PathLike, None] = None,
    *,
    config: Optional[Mapping[str, Any]] = None,
    redis_url: Optional[str] = None,
    service_name: Optional[str] = None,
    process_name: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> RootConfig:
    """Build the configuration from every source, highest precedence last applied."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    file_path = config_file or environ.get(ENV_CONFIG)
    if file_path:
        raw = read_config_file(file_path)
    if config:
        raw = _deep_merge(raw, config)
    for env_name, key in ((ENV_SERVICE_NAME, "service_name"), (ENV_PROCESS_NAME, "process_name")):
        if environ.get(env_name):
            raw[key] = environ[env_name]
    if environ.get(ENV_REDIS_URL):
        _set_url_everywhere(raw, environ[ENV_REDIS_URL])
    if service_name is not None:
        raw["service_name"] = service_name
    if process_name is not None:
        raw["process_name"] = process_name
    if redis_url is not None:
        _set_url_everywhere(raw, redis_url)
    return structure_config(raw)


def default_process_name() -> str:
    """``<hostname>-<pid>``: unique per live process. Set ``process_name`` for a name that
    survives restarts (so a restarted process drains its own pending entries first)."""
    return f"{socket.gethostname()}-{os.getpid()}"
