"""Sharing schemas through Redis, and the compiled validators built from them.

- Local schemas (APIs this process defines) are published with ``SET schema:{api}``
  + ``EXPIRE ttl`` + ``SADD schemas {api}`` on first use (the first fire, or a runner's
  start) and refreshed every ``ttl * 0.8`` s by a daemon thread while the process
  lives (Lightbus only refreshes them from its workers).
- Remote schemas (APIs defined elsewhere) are loaded with ``SMEMBERS schemas`` +
  ``MGET`` when first needed, and reloaded by the same thread. When a remote schema
  disappears from the bus, the last one seen is kept (with a warning), unless
  ``strict_validation`` is set for that API.
- Validators are compiled once per schema document (fastjsonschema), not per event.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

import fastjsonschema

from ..errors import ConfigurationError, TransportError
from .generate import api_schema, encode_schema
from .quick_check import quick_check

if TYPE_CHECKING:
    from ..api import ApiDefinition
    from ..transport import RedisTransport

logger = logging.getLogger("lightbus_sync.schema")

Validator = Callable[[dict[str, Any]], Any]


def _with_quick_check(schema: dict[str, Any], full: Validator) -> Validator:
    """``full``, preceded by the schema's quick check when it has one (data the quick
    check accepts, the full validator would accept too)."""
    quick = quick_check(schema)
    if quick is None:
        return full

    def validate(data: dict[str, Any]) -> Any:
        if quick(data):
            return data
        return full(data)

    return validate


class SchemaRegistry:
    """The schemas of one bus. ``transport()`` gives the transport of the schema Redis
    (asked each time: the bus may swap its transports); ``ttl`` is ``bus.schema.ttl``;
    ``local_definition(api)`` the definition of an API this process defines, else None;
    ``strict_validation(api)`` that API's setting."""

    def __init__(
        self,
        *,
        transport: Callable[[], "RedisTransport"],
        ttl: int,
        local_definition: Callable[[str], Optional["ApiDefinition"]],
        strict_validation: Callable[[str], bool],
    ) -> None:
        self._transport = transport
        self._ttl = ttl
        self._local_definition = local_definition
        self._strict_validation = strict_validation
        self._lock = threading.RLock()
        self._published: set[str] = set()
        self._remote: dict[str, dict[str, Any]] = {}
        self._remote_seen_at: dict[str, float] = {}
        self._file_schemas: dict[str, dict[str, Any]] = {}
        self._validators: dict[tuple[str, str, int], Optional[Validator]] = {}
        self._loaded_once = False
        self._keeper: Optional[threading.Thread] = None
        self._keeper_pid = 0
        self._stop = threading.Event()

    # --- documents -------------------------------------------------------------------

    @property
    def ttl(self) -> int:
        return self._ttl

    def local_document(self, api_name: str) -> Optional[dict[str, Any]]:
        definition = self._local_definition(api_name)
        return None if definition is None else api_schema(definition)

    def remote_document(self, api_name: str, *, load: bool = True) -> Optional[dict[str, Any]]:
        """The schema another service published for ``api_name`` (or loaded from a file)."""
        if api_name in self._file_schemas:
            return self._file_schemas[api_name]
        if api_name not in self._remote and load:
            self.load_remote()
        return self._remote.get(api_name)

    def document(self, api_name: str) -> Optional[dict[str, Any]]:
        """Local definition first, else remote."""
        return self.local_document(api_name) or self.remote_document(api_name)

    def remote_names(self) -> list[str]:
        return sorted(set(self._remote) | set(self._file_schemas))

    # --- Redis -----------------------------------------------------------------------

    def publish(self, api_names: Iterable[str]) -> None:
        """Store the local schemas of ``api_names`` now and keep them refreshed."""
        documents = {}
        for name in api_names:
            document = self.local_document(name)
            if document is not None:
                documents[name] = encode_schema(document)
        if not documents:
            return
        self._transport().store_schemas(documents, self.ttl)
        with self._lock:
            self._published.update(documents)
        self._ensure_keeper()

    def ensure_published(self, api_name: str) -> None:
        """Publish ``api_name``'s schema if this process has not yet (first use). Never
        raises: a failure is logged and retried by the keeper thread."""
        if api_name in self._published:
            return
        try:
            self.publish([api_name])
        except Exception as exc:
            logger.warning("could not publish the schema of %r yet (%s); will retry", api_name, exc)
            with self._lock:
                self._published.add(api_name)
            self._ensure_keeper()

    def load_remote(self) -> None:
        """Load every schema on the bus that this process does not define."""
        try:
            documents = self._transport().load_schemas()
        except TransportError:
            raise
        now = time.monotonic()
        with self._lock:
            self._loaded_once = True
            for name, text in documents.items():
                if self._local_definition(name) is not None:
                    continue
                try:
                    document = json.loads(text)
                except ValueError:
                    logger.warning("schema of %r on the bus is not valid JSON; ignored", name)
                    continue
                if self._remote.get(name) != document:
                    self._remote[name] = document
                    self._forget_validators(name)
                self._remote_seen_at[name] = now
            for name in list(self._remote):
                if name not in documents:
                    if self._strict_validation(name):
                        logger.error("schema of remote API %r is gone from the bus; dropped (strict_validation)", name)
                        del self._remote[name]
                        self._forget_validators(name)
                    else:
                        logger.warning("schema of remote API %r is gone from the bus; keeping the last one seen", name)
        self._ensure_keeper()

    def load_files(self, path: "str | os.PathLike[str]") -> list[str]:
        """Load schemas from a JSON file (``{api: document}`` or one API's document named
        ``<api>.json``) or a directory of such files; returns the API names loaded."""
        path = Path(path)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        loaded = []
        for file in files:
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot load schema file {file}: {exc}") from exc
            if isinstance(data, dict) and "events" in data:
                documents = {file.stem: data}
            elif isinstance(data, dict):
                documents = data
            else:
                raise ConfigurationError(f"schema file {file}: expected a JSON object")
            for name, document in documents.items():
                if not isinstance(document, dict) or "events" not in document:
                    raise ConfigurationError(f"schema file {file}: {name!r} is not an API schema document")
                self._file_schemas[name] = document
                self._forget_validators(name)
                loaded.append(name)
        return loaded

    # --- validators ------------------------------------------------------------------

    def validator(self, api_name: str, event_name: str) -> Optional[Validator]:
        """The compiled validator of an event's parameters, or None if no schema is known."""
        key = (api_name, event_name, 0)
        try:
            return self._validators[key]
        except KeyError:
            pass
        document = self.document(api_name)
        validator = None
        if document is not None:
            event = (document.get("events") or {}).get(event_name)
            if event is not None and isinstance(event.get("parameters"), dict):
                validator = _with_quick_check(
                    event["parameters"],
                    fastjsonschema.compile(event["parameters"], use_default=False, use_formats=False),
                )
        with self._lock:
            self._validators[key] = validator
        return validator

    def _forget_validators(self, api_name: str) -> None:
        with self._lock:
            for key in [k for k in self._validators if k[0] == api_name]:
                del self._validators[key]

    # --- refreshing ------------------------------------------------------------------

    def _ensure_keeper(self) -> None:
        with self._lock:
            if self._keeper is not None and self._keeper.is_alive() and self._keeper_pid == os.getpid():
                return
            self._stop.clear()
            self._keeper_pid = os.getpid()
            self._keeper = threading.Thread(target=self._keep, name="lightbus-schema-keeper", daemon=True)
            self._keeper.start()

    def refresh(self) -> None:
        """Re-store our schemas and reload remote ones (what the keeper does each interval)."""
        with self._lock:
            published = list(self._published)
            remote_wanted = bool(self._remote) or self._loaded_once
        if published:
            self.publish(published)
        if remote_wanted:
            self.load_remote()

    def _keep(self) -> None:
        while not self._stop.wait(max(self.ttl * 0.8, 0.1)):
            try:
                self.refresh()
            except Exception as exc:
                logger.warning("schema refresh failed (%s: %s); retrying next interval", type(exc).__name__, exc)

    def stop(self) -> None:
        self._stop.set()
