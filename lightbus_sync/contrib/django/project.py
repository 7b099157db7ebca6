"""The project's one bus: created from the settings when the app is ready, then every
installed app's ``bus`` module is imported (autodiscovery) and the listeners declared
with ``@listen`` are registered on it."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

import attrs

from ... import config as config_module
from ...bus import Bus
from ...config import RootConfig, default_process_name
from .conf import default_service_name, project_config
from .outbox import DjangoOutboxSink, database_url, relay_to_stand_ins, relayed_alias

if TYPE_CHECKING:
    from ...bus import TransportState

#: The module every installed app may have; imported when the app registry is ready.
BUS_MODULE = "bus"

_ENV_NAMES = (
    config_module.ENV_REDIS_URL, config_module.ENV_SERVICE_NAME,
    config_module.ENV_PROCESS_NAME, config_module.ENV_CONFIG,
)


class DjangoBus(Bus):
    """The project's bus: ``outbox()`` takes a database alias (``using=``) as well as a
    SQLAlchemy session, and ``listen()`` an ``inbox="<database alias>"``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from .inbox import InboxListenerRegistry

        super().__init__(*args, **kwargs)
        self.listeners = InboxListenerRegistry(self.service_name)
        self._stand_ins = 0  # transports swapped by the testing helpers, not yet restored

    def swap_transports(self, factory: Any) -> "TransportState":
        state = super().swap_transports(factory)
        with self._lock:
            self._stand_ins += 1
        return state

    def restore_transports(self, state: "TransportState") -> None:
        super().restore_transports(state)
        with self._lock:
            self._stand_ins -= 1

    def _relay_committed(self, using: str, event_ids: list[str]) -> None:
        """A test's committed outbox rows go where its fires go, while they stand in for Redis."""
        if self._stand_ins:
            relay_to_stand_ins(self, using, event_ids)

    def outbox(self, session: Any = None, *, using: Optional[str] = None) -> Any:
        """This bus's APIs, firing into the outbox table of database ``using`` (default
        ``"default"``) inside its current ``transaction.atomic()`` block, so the event is
        published (by the relay) if and only if the transaction commits. A SQLAlchemy
        ``Session`` or ``Connection`` may be given instead, as for any bus.

        While a testing helper stands in for Redis (``in_memory``, ``record_events``), a
        commit relays the rows at once, into it (handled, or recorded), and deletes them."""
        if session is not None and using is not None:
            raise TypeError("bus.outbox() takes a SQLAlchemy session or using=<database alias>, not both")
        if session is None:
            from django.db import DEFAULT_DB_ALIAS

            # With the transports standing in for Redis (lightbus_sync.testing's in_memory,
            # record_events), a commit relays the rows into them, as a relay would to Redis.
            on_commit = self._relay_committed if self._stand_ins else None
            session = DjangoOutboxSink(using or DEFAULT_DB_ALIAS, on_commit=on_commit)
        return super().outbox(session)


def with_outbox_database(root: RootConfig, alias: Optional[str]) -> RootConfig:
    """The configuration with ``bus.outbox.url`` pointing at database ``alias`` (when set
    and no URL is configured), so ``lightbus_run`` relays it and ``status`` shows its backlog."""
    if alias is None or root.bus.outbox.url is not None:
        return root
    outbox = attrs.evolve(root.bus.outbox, url=database_url(alias))
    return attrs.evolve(root, bus=attrs.evolve(root.bus, outbox=outbox))


class ProjectBus:
    """Holds the project's bus and the listeners declared before it exists.

    Invariant: once ``ready()`` has run, every ``@listen`` declaration is registered on
    ``bus`` (at once if declared later).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._bus: Optional[Bus] = None
        self._ready = False
        self._deferred: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []
        #: The LIGHTBUS_* environment the bus was created under (commands check their flags against it).
        self.created_with: dict[str, Optional[str]] = {}

    @property
    def bus(self) -> Bus:
        """The bus, created from the settings on first use."""
        with self._lock:
            if self._bus is None:
                from django.conf import settings

                root = with_outbox_database(project_config(settings), relayed_alias(settings))
                self.created_with = {name: os.environ.get(name) for name in _ENV_NAMES}
                self._bus = DjangoBus(
                    root, root.service_name or default_service_name(settings),
                    root.process_name or default_process_name(),
                )
            return self._bus

    def ready(self) -> None:
        """Create the bus, import every app's ``bus`` module, register deferred listeners."""
        from django.utils.module_loading import autodiscover_modules

        from .connections import DjangoConnections

        self.bus.add_observer(DjangoConnections())  # per-handler connection management
        autodiscover_modules(BUS_MODULE)
        with self._lock:
            self._ready = True
            deferred, self._deferred = self._deferred, []
        for event, handler, options in deferred:
            self._register(event, handler, options)

    def listen(self, event: str, handler: Callable[..., Any], options: dict[str, Any]) -> None:
        with self._lock:
            if not self._ready:
                self._deferred.append((event, handler, options))
                return
        self._register(event, handler, options)

    def _register(self, event: str, handler: Callable[..., Any], options: dict[str, Any]) -> None:
        from ...event_lookup import event_client

        event_client(self.bus, event).listen(handler, **options)


project = ProjectBus()
