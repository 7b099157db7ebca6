"""Who may act: the action token, and the CSRF check on every POST.

- Read-only unless an action token is configured. With one, an action (a POST) needs
  the token typed into its confirmation form; it is compared in constant time.
- CSRF: each browser gets a random ``lightbus_dashboard_csrf`` cookie (``HttpOnly``,
  ``SameSite=Strict``); every form carries the same value in a hidden field, and a POST
  is refused unless both are present and equal. A POST whose ``Origin`` header names
  another host than ``Host`` is refused too.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import CookieError, SimpleCookie
from typing import Mapping, Optional
from urllib.parse import urlsplit

CSRF_COOKIE = "lightbus_dashboard_csrf"
CSRF_FIELD = "csrf"
TOKEN_FIELD = "token"
MIN_TOKEN_LENGTH = 16


class ActionGuard:
    """Decides whether a POST may act. ``token``: the action token, or None (read-only)."""

    def __init__(self, token: Optional[str]) -> None:
        if token is not None:
            token = token.strip()
            if len(token) < MIN_TOKEN_LENGTH:
                raise ValueError(
                    f"action token: expected at least {MIN_TOKEN_LENGTH} characters "
                    f"(e.g. python -c 'import secrets; print(secrets.token_urlsafe())'), got {len(token)}"
                )
        self._token = token

    @property
    def actions_enabled(self) -> bool:
        return self._token is not None

    def refusal(self, environ: Mapping[str, object], form: Mapping[str, str]) -> Optional[str]:
        """Why this POST may not act, or None when it may."""
        if self._token is None:
            return ("this dashboard is read-only: start it with an action token "
                    "($LIGHTBUS_DASHBOARD_TOKEN or --action-token-file) to replay or purge")
        if not same_origin(environ):
            return "the request came from another site (Origin does not match Host)"
        cookie = csrf_cookie(environ)
        sent = form.get(CSRF_FIELD, "")
        if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return "the form's CSRF token is missing or wrong: reload the page and try again"
        if not hmac.compare_digest(self._token.encode(), form.get(TOKEN_FIELD, "").strip().encode()):
            return "wrong action token"
        return None


def new_csrf_value() -> str:
    return secrets.token_urlsafe(32)


def csrf_cookie(environ: Mapping[str, object]) -> Optional[str]:
    raw = environ.get("HTTP_COOKIE")
    if not raw:
        return None
    try:
        cookie = SimpleCookie(str(raw))
    except CookieError:
        return None
    morsel = cookie.get(CSRF_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def csrf_set_cookie(value: str, path: str) -> str:
    return f"{CSRF_COOKIE}={value}; Path={path or '/'}; HttpOnly; SameSite=Strict"


def same_origin(environ: Mapping[str, object]) -> bool:
    """True without an ``Origin`` header, or when it names the ``Host`` the request went to."""
    origin = environ.get("HTTP_ORIGIN")
    if not origin or origin == "null":
        return not origin
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return urlsplit(str(origin)).netloc.lower() == str(host).lower()
