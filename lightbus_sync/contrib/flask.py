"""Flask integration: ``LightbusSync(app)`` (``pip install 'lightbus_sync[flask]'``).

::

    from flask import Flask
    from lightbus_sync.contrib.flask import LightbusSync

    lightbus = LightbusSync()

    @lightbus.listen("auth.user_created", listener_name="send_welcome")
    def send_welcome(username, email): ...

    def create_app():
        app = Flask(__name__)
        app.config["LIGHTBUS_LISTEN"] = True
        lightbus.init_app(app)
        return app

    # in a view: lightbus.bus.auth.user_created.fire(username=..., email=...)

``init_app`` creates the bus from ``app.config`` (missing keys fall back to the
``LIGHTBUS_*`` environment variables and the config file, as ``create()`` does):

- ``LIGHTBUS_REDIS_URL``: the Redis URL for every API;
- ``LIGHTBUS_SERVICE_NAME``: names the consumer groups (default: the app's top-level
  package, from ``app.import_name``);
- ``LIGHTBUS_PROCESS_NAME``: the consumer name (default ``<hostname>-<pid>``);
- ``LIGHTBUS_CONFIG``: a config file path, or the config as a mapping;
- ``LIGHTBUS_LISTEN`` (default False): run the bus's listeners in background threads
  of this process (``bus.start_listener_thread()``), stopped at exit (``atexit``:
  in-flight handlers finish and are acked, within the shutdown timeout).

The extension is ``app.extensions['lightbus_sync']``; its bus is ``.bus`` and the
``Runner`` running its listeners, if any, ``.runner`` (``.listener`` is the old name of
the same attribute, kept for compatibility).

The development server's reloader runs the app in two processes: a parent that only
watches files, and a child (``WERKZEUG_RUN_MAIN=true``) that serves. The listener is
started in the serving child only: under ``flask run`` the parent is recognised from the
command's own ``--reload`` / ``--debug`` settings. Elsewhere, an app already in debug
mode at ``init_app`` (``DEBUG`` in its config, ``FLASK_DEBUG=1``) may be the parent of
``app.run()``'s reloader, so its listener starts with the first request it serves
(which the parent never does). ``app.run(debug=True)`` turns debug on only after
``init_app``: there, pass ``use_reloader=False`` or set ``DEBUG`` in the config first.
Under gunicorn/uWSGI with preloading, start the listener after the fork
(``LIGHTBUS_LISTEN=False`` and ``lightbus.start_listener()`` in ``post_fork``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from ..bus import Bus, default_service_name
from ..config import default_process_name, load_config

if TYPE_CHECKING:
    from flask import Flask

    from ..runner import Runner

__all__ = ["LightbusSync", "in_reloader_parent"]

logger = logging.getLogger(__name__)

EXTENSION_NAME = "lightbus_sync"


def in_reloader_parent(app: Optional["Flask"] = None) -> Optional[bool]:
    """Whether this is the Werkzeug reloader's watching parent process, which never serves:
    True, False, or None when it cannot be told.

    The serving child has ``WERKZEUG_RUN_MAIN=true`` (False). Under ``flask run`` the
    parent is the process whose command has the reloader on (``--reload``, or ``--debug``
    / ``FLASK_DEBUG`` without ``--no-reload``). Elsewhere, an app in debug mode may be
    about to call ``app.run()``, whose reloader is on in debug mode: None. Otherwise False.
    """
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        return False
    try:
        import click

        context = click.get_current_context(silent=True)
    except ImportError:  # pragma: no cover - Flask depends on click
        context = None
    from flask.helpers import get_debug_flag

    if context is not None and context.info_name == "run" and "reload" in context.params:
        reload = context.params["reload"]
        return bool(get_debug_flag() if reload is None else reload)
    if app is not None and app.debug:
        return None
    return False


class LightbusSync:
    """The Flask extension; see the module docs."""

    def __init__(
        self,
        app: Optional["Flask"] = None,
        *,
        bus: Optional[Bus] = None,
        listener_options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self._bus = bus
        #: The ``Runner`` of the bus's listeners while it runs, else None.
        self.runner: Optional["Runner"] = None
        self.listener_options = dict(listener_options or {})
        self._deferred: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._atexit_registered = False
        self._started_once = False
        if app is not None:
            self.init_app(app)

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            raise RuntimeError("LightbusSync has no bus yet: call init_app(app) first (it creates the bus "
                               "from app.config)")
        return self._bus

    @property
    def listener(self) -> Optional["Runner"]:
        """The old name of ``runner``."""
        return self.runner

    # --- set-up ------------------------------------------------------------------------

    def init_app(self, app: "Flask") -> None:
        """Create the bus from ``app.config`` (once), register deferred listeners, and
        start the listener thread if ``LIGHTBUS_LISTEN`` (not in a reloader's parent)."""
        with self._lock:
            if self._bus is None:
                self._bus = self._create_bus(app)
            for event, handler, options in self._deferred:
                self._register(event, handler, options)
            self._deferred.clear()
        app.extensions[EXTENSION_NAME] = self
        if app.config.get("LIGHTBUS_LISTEN", False):
            parent = in_reloader_parent(app)
            if parent is False:
                self.start_listener()
            elif parent:
                logger.info("lightbus_sync: not starting listeners in the reloader's parent process "
                            "(the serving child process runs them)")
            else:
                # Debug mode outside `flask run`: maybe app.run()'s reloader parent, which
                # serves no request; start with the first request this process serves.
                logger.info("lightbus_sync: debug mode: listeners start with the first request")
                app.before_request(self._start_on_first_request)

    @staticmethod
    def _create_bus(app: "Flask") -> Bus:
        config = app.config
        file_or_mapping = config.get("LIGHTBUS_CONFIG")
        mapping = file_or_mapping if isinstance(file_or_mapping, Mapping) else None
        root = load_config(
            None if mapping is not None else file_or_mapping,
            config=mapping,
            redis_url=config.get("LIGHTBUS_REDIS_URL"),
            service_name=config.get("LIGHTBUS_SERVICE_NAME"),
            process_name=config.get("LIGHTBUS_PROCESS_NAME"),
        )
        service = root.service_name or default_service_name(app.import_name)
        return Bus(root, service, root.process_name or default_process_name())

    def listen(self, event: str, *, listener_name: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``bus.<event>.listen(handler, listener_name=..., **options)``, done
        now if the bus exists, else by ``init_app`` (before the listener starts)."""

        def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
            with self._lock:
                if self._bus is None:
                    self._deferred.append((event, handler, {"listener_name": listener_name, **options}))
                else:
                    self._register(event, handler, {"listener_name": listener_name, **options})
            return handler

        return decorator

    def _register(self, event: str, handler: Callable[..., Any], options: dict[str, Any]) -> None:
        from ..event_lookup import event_client

        if self.runner is not None:
            logger.warning("lightbus_sync: listener %r registered after the listener thread started; "
                           "it runs from the next start", options.get("listener_name"))
        event_client(self.bus, event).listen(handler, **options)

    # --- the listener thread -------------------------------------------------------------

    def start_listener(self, **options: Any) -> "Runner":
        """Start the bus's listeners in background threads (once); stopped at exit."""
        with self._lock:
            if self.runner is None:
                self.runner = self.bus.start_listener_thread(**{**self.listener_options, **options})
                self._started_once = True
                if not self._atexit_registered:
                    atexit.register(self._at_exit)
                    self._atexit_registered = True
            return self.runner

    def _start_on_first_request(self) -> None:
        if not self._started_once:
            self.start_listener()

    def stop_listener(self, timeout: Optional[float] = None) -> bool:
        """Stop the listener thread (in-flight handlers finish and are acked within
        ``timeout``, default the shutdown timeout); True if it stopped cleanly."""
        with self._lock:
            runner, self.runner = self.runner, None
        if runner is None:
            return True
        clean = runner.stop(timeout)
        logger.info("lightbus_sync: listener stopped (%s)", "clean" if clean else "entries left pending")
        return clean

    def _at_exit(self) -> None:
        try:
            self.stop_listener()
        finally:
            if self._bus is not None:
                self._bus.close()
