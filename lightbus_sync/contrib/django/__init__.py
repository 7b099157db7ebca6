"""Django integration: ``INSTALLED_APPS += ["lightbus_sync.contrib.django"]``
(``pip install 'lightbus_sync[django]'``).

- ``settings.LIGHTBUS_SYNC``: the config file's keys as a mapping, or a config file's
  path; validated at start-up (``ImproperlyConfigured`` naming the setting's key).
- One bus per project, ``lightbus_sync.contrib.django.bus``, created when the app is
  ready; then every installed app's ``bus`` module is imported, so its ``Api`` classes
  and listeners are registered.
- ``@listen("api.event", listener_name=...)`` in a ``bus`` module registers a handler
  once every app's ``bus`` module has been imported (so the API may be defined in any app).
- ``fire_on_commit(event, **parameters)``: fire when the transaction commits.
- ``manage.py lightbus_run``: ``lightbus-sync run`` for the project's bus;
  ``manage.py lightbus status|inspect|dead-letters|dumpschema|dashboard|outbox relay``.
- Tests: ``lightbus_sync.contrib.django.testing`` (``in_memory()``, ``InMemoryBusMixin``,
  ``outbox_events()``) and the pytest plugin ``lightbus_sync.contrib.django.pytest_plugin``.

See docs/django.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from .transaction import fire_on_commit

if TYPE_CHECKING:
    from ...bus import Bus

__all__ = ["bus", "fire_on_commit", "get_bus", "listen"]


def get_bus() -> "Bus":
    """The project's bus (created from the settings on first use)."""
    from .project import project

    return project.bus


def listen(
    event: str, *, listener_name: str, inbox: Optional[str] = None, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``bus.<event>.listen(handler, listener_name=..., **options)``, done once every
    installed app's ``bus`` module has been imported (at once after that).

    ``inbox="<database alias>"``: the handler runs in ``transaction.atomic(using=alias)``
    with the event recorded in that database's inbox table, so its effects there happen
    once per event (a redelivery of a handled event is skipped).
    """
    from .project import project

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        project.listen(event, handler, {"listener_name": listener_name, "inbox": inbox, **options})
        return handler

    return decorator


def __getattr__(name: str) -> Any:
    if name == "bus":  # `from lightbus_sync.contrib.django import bus`
        return get_bus()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
