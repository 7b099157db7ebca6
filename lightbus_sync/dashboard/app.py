"""The dashboard as a WSGI application: routes, forms and responses.

Every page reads through the ``ops`` functions (``collect_status``,
``recent_events``, ``list_dead_letters``, ``get_dead_letter``, ``replay``, ``purge``);
the app adds no Redis query of its own. It honours ``SCRIPT_NAME``, so it can be
mounted under a prefix of another WSGI app (see ``mount``). Responses carry a
Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence
from urllib.parse import parse_qs

import redis

from ..errors import LightbusError
from ..ops.dead_letters import DeadLetterNotFound, get_dead_letter, list_dead_letters, purge, replay
from ..ops.inspect import recent_events
from ..ops.status import BusStatus, collect_status
from ..ops.streams import Source, all_transports, bus_streams, resolve_api_argument
from ..transport import TRANSIENT_ERRORS
from . import pages
from .html import Html
from .outbox import BacklogHook, find_outbox_backlog
from .sampler import LagSampler
from .security import ActionGuard, csrf_cookie, csrf_set_cookie, new_csrf_value

logger = logging.getLogger("lightbus_sync.dashboard")

StartResponse = Callable[..., Any]
MAX_FORM_BYTES = 16 * 1024
MAX_LIMIT = 500
HEADERS = [
    ("Content-Security-Policy",
     "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
     "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]


class Dashboard:
    """A WSGI app showing a bus: ``source`` is a ``Bus`` (its local APIs and listeners
    are shown when ``include_local``) or a ``RedisTransport``; ``apis`` names more APIs;
    ``discover`` adds every event stream found on the Redis server(s).

    ``action_token``: None for read-only; else the token a replay or purge must give.
    ``outbox_backlog``: a hook for the streams page's outbox column (default: the
    ``lightbus_sync.outbox`` module's, when present). ``sample_interval``: seconds
    between lag samples (``start()`` starts sampling, ``stop()`` stops it).
    """

    def __init__(
        self,
        source: Source,
        *,
        apis: Sequence[str] = (),
        include_local: bool = True,
        discover: bool = True,
        action_token: Optional[str] = None,
        outbox_backlog: Optional[BacklogHook] = None,
        sample_interval: float = 5.0,
    ) -> None:
        self.source = source
        self._apis = list(apis)
        self._include_local = include_local
        self._discover = discover
        self.guard = ActionGuard(action_token)
        self._backlog = outbox_backlog if outbox_backlog is not None else find_outbox_backlog(source)
        self.sampler = LagSampler(self.status, interval=sample_interval)
        self._routes: dict[tuple[str, str], Callable[[dict, Mapping[str, str]], tuple[str, Html]]] = {
            ("GET", "/"): self._streams,
            ("GET", "/streams"): self._streams,
            ("GET", "/groups"): self._groups,
            ("GET", "/events"): self._events,
            ("GET", "/dead-letters"): self._dead_letters,
            ("GET", "/dead-letters/show"): self._dead_letter,
            ("GET", "/dead-letters/confirm"): self._confirm,
            ("POST", "/dead-letters/replay"): self._act,
            ("POST", "/dead-letters/purge"): self._act,
        }

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> "Dashboard":
        """Start sampling lag (the charts are empty until then)."""
        self.sampler.start()
        return self

    def stop(self) -> None:
        self.sampler.stop()

    def status(self) -> BusStatus:
        return collect_status(self.source, self._apis, include_local=self._include_local, discover=self._discover)

    # --- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO") or "/"
        if len(path) > 1:
            path = path.rstrip("/")
        links = pages.Links((environ.get("SCRIPT_NAME") or "").rstrip("/"))
        csrf = csrf_cookie(environ)
        extra_headers = []
        if csrf is None:
            csrf = new_csrf_value()
            extra_headers.append(("Set-Cookie", csrf_set_cookie(csrf, links.base + "/")))
        environ["lightbus_sync.csrf"] = csrf
        environ["lightbus_sync.links"] = links
        handler = self._routes.get(("GET" if method == "HEAD" else method, path))
        if handler is None:
            allowed = sorted(m for m, p in self._routes if p == path)
            if allowed:
                return self._respond(start_response, "405 Method Not Allowed", "Not allowed",
                                     pages.message_page("refused", f"use {' or '.join(allowed)}", links("/")),
                                     links, "", [("Allow", ", ".join(allowed))] + extra_headers)
            return self._respond(start_response, "404 Not Found", "Not found",
                                 pages.message_page("refused", f"no page {path}", links("/")), links, "", extra_headers)
        try:
            form = self._form(environ, method)
            code, (title, current, body) = "200 OK", handler(environ, form)
        except _Refused as refused:
            code, title, current = refused.status, "Refused", ""
            body = pages.message_page("refused", refused.message, refused.back or links("/"))
        except (LightbusError, ValueError) as exc:
            code, title, current = "400 Bad Request", "Bad request", ""
            body = pages.message_page("refused", str(exc), links("/"))
        except TRANSIENT_ERRORS as exc:
            code, title, current = "503 Service Unavailable", "Redis unavailable", ""
            body = pages.message_page("refused", f"Redis unavailable: {type(exc).__name__}: {exc}", links("/"))
        except redis.RedisError as exc:
            code, title, current = "502 Bad Gateway", "Redis refused", ""
            body = pages.message_page("refused", f"Redis refused a command: {exc}", links("/"))
        return self._respond(start_response, code, title, body, links, current, extra_headers,
                             refresh=environ.get("lightbus_sync.refresh"))

    def _respond(self, start_response: StartResponse, code: str, title: str, body: Html, links: pages.Links,
                 current: str, extra_headers: list, refresh: Optional[int] = None) -> list[bytes]:
        document = pages.layout(title, body, links, current, actions_enabled=self.guard.actions_enabled,
                                servers=[t.safe_url for t in all_transports(self.source)], refresh=refresh)
        data = document.encode("utf-8")
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))]
        start_response(code, headers + HEADERS + extra_headers)
        return [data]

    def _form(self, environ: dict, method: str) -> dict[str, str]:
        """Query string, and for a POST the url-encoded body: the first value of each name."""
        values = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > MAX_FORM_BYTES:
                raise _Refused("413 Payload Too Large", f"form larger than {MAX_FORM_BYTES} bytes")
            body = environ["wsgi.input"].read(length).decode("utf-8", "replace") if length else ""
            values = parse_qs(body, keep_blank_values=True)  # a POST acts on its body alone
        return {k: v[0] for k, v in values.items()}

    # --- pages -------------------------------------------------------------------------

    def _streams(self, environ: dict, form: Mapping[str, str]) -> tuple[str, str, Html]:
        status = self.status()
        backlog = None
        if self._backlog is not None:
            try:
                backlog = dict(self._backlog())
            except Exception as exc:  # the outbox's database away: the rest of the page still shows
                logger.warning("outbox backlog unavailable: %s: %s", type(exc).__name__, exc)
                backlog = {}
        return "Streams", "streams", pages.streams_page(status, environ["lightbus_sync.links"], backlog)

    def _groups(self, environ: dict, form: Mapping[str, str]) -> tuple[str, str, Html]:
        status = self.status()
        environ["lightbus_sync.refresh"] = max(int(self.sampler.interval * 2), 5)
        body = pages.groups_page(status, environ["lightbus_sync.links"],
                                 lambda s, g: self.sampler.series(s.redis, s.stream, g.name), self.sampler.interval)
        return "Groups", "groups", body

    def _events(self, environ: dict, form: Mapping[str, str]) -> tuple[str, str, Html]:
        apis = sorted({t.api_name for t in bus_streams(self.source, self._apis, include_local=self._include_local,
                                                       discover=self._discover)})
        api = (form.get("api") or "").strip() or None
        event = (form.get("event") or "").strip() or None
        limit = _int(form.get("limit"), "limit", 20, 1, MAX_LIMIT)
        events = []
        if api:
            if event is None:
                api, event = resolve_api_argument(self.source, api)
            events = recent_events(self.source, api, event, limit=limit)
        return "Events", "events", pages.events_page(apis, api, event, limit, events, environ["lightbus_sync.links"])

    def _dead_letters(self, environ: dict, form: Mapping[str, str]) -> tuple[str, str, Html]:
        stream = (form.get("stream") or "").strip() or None
        limit = _int(form.get("limit"), "limit", 100, 1, MAX_LIMIT)
        letters = list_dead_letters(self.source, stream, group=(form.get("group") or None), limit=limit)
        body = pages.dead_letters_page(letters, stream, environ["lightbus_sync.links"], self.guard.actions_enabled)
        return "Dead letters", "dead-letters", body

    def _letter(self, form: Mapping[str, str], links: pages.Links):
        stream, dead_id = (form.get("stream") or "").strip(), (form.get("id") or "").strip()
        if not stream or not dead_id:
            raise ValueError("stream and id: expected a dead-letter stream and a dead-letter id")
        try:
            return get_dead_letter(self.source, dead_id, stream)
        except DeadLetterNotFound as exc:
            raise _Refused("404 Not Found", str(exc), links("/dead-letters")) from None

    def _dead_letter(self, environ: dict, form: Mapping[str, str]) -> tuple[str, str, Html]:
        links = environ["lightbus_sync.links"]
        letter = self._letter(form, links)
        return ("Dead letter", "dead-letters",
                pages.dead_letter_page(letter, links, self.guard.actions_enabled))

    def _confirm(self, environ: dict, form: Mapping[str, str]) -> tuple[str, str, Html]:
        links = environ["lightbus_sync.links"]
        action = form.get("action", "")
        if action not in pages.ACTIONS:
            raise ValueError(f"action: expected replay or purge, got {action!r}")
        if not self.guard.actions_enabled:
            raise _Refused("403 Forbidden", self.guard.refusal(environ, {}) or "", links("/dead-letters"))
        letter = self._letter(form, links)
        return (f"{action.capitalize()} a dead letter?", "dead-letters",
                pages.confirm_page(action, letter, environ["lightbus_sync.csrf"], links))

    def _act(self, environ: dict, form: Mapping[str, str]) -> tuple[str, str, Html]:
        links = environ["lightbus_sync.links"]
        action = environ["PATH_INFO"].rstrip("/").rsplit("/", 1)[-1]
        refusal = self.guard.refusal(environ, form)
        if refusal is not None:
            logger.warning("dashboard %s refused: %s", action, refusal)
            raise _Refused("403 Forbidden", refusal, links("/dead-letters"))
        if form.get("confirm") != "yes":
            raise _Refused("400 Bad Request", "not confirmed: use the confirmation form", links("/dead-letters"))
        letter = self._letter(form, links)
        back = links("/dead-letters", stream=letter.stream)
        if action == "replay":
            result = replay(self.source, [letter])
            if not result.replayed:
                why = "; ".join(w for _, w in result.skipped) or "it was replayed or purged already"
                raise _Refused("409 Conflict", f"dead letter {letter.dead_id} not replayed: {why}", back)
            done = result.replayed[0]
            text = f"Replayed {done.dead_id} to {done.replay_stream} as {done.new_id} (group {done.group})."
        else:
            count = purge(self.source, [letter])
            if not count:
                raise _Refused("409 Conflict", f"dead letter {letter.dead_id} was gone already", back)
            text = f"Purged {letter.dead_id} from {letter.dead_stream}."
        logger.info("dashboard: %s", text)
        return "Done", "dead-letters", pages.message_page("done", text, back)


class _Refused(Exception):
    def __init__(self, status: str, message: str, back: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.back = back


def _int(text: Optional[str], name: str, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}: expected a whole number from {low} to {high}, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: expected a whole number from {low} to {high}, got {value}")
    return value


def mount(prefix: str, dashboard: Callable, app: Callable) -> Callable:
    """A WSGI app sending ``prefix`` and everything under it to ``dashboard`` (with
    ``SCRIPT_NAME``/``PATH_INFO`` moved accordingly) and the rest to ``app``: for a
    Flask app's ``wsgi_app`` or a Django project's ``application``."""
    prefix = "/" + prefix.strip("/")
    if prefix == "/":
        raise ValueError("prefix: expected a path such as '/bus', got '/'")

    def dispatch(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or ""
        if path == prefix or path.startswith(prefix + "/"):
            environ = dict(environ, SCRIPT_NAME=(environ.get("SCRIPT_NAME") or "").rstrip("/") + prefix,
                           PATH_INFO=path[len(prefix):] or "/")
            return dashboard(environ, start_response)
        return app(environ, start_response)

    return dispatch
