"""HTML built so that nothing from a stream can become markup.

``Html`` marks text that is already markup. ``html(template, *values)`` fills a
template's ``{}`` fields, escaping every value that is not ``Html`` (``<``, ``>``,
``&`` and both quotes), so a value is text wherever it lands, in an element or an
attribute. Pages are made only of ``html()`` results and ``join()`` of them.
"""

from __future__ import annotations

import html as _stdlib_html
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode


class Html(str):
    """A string that is markup already (never escaped again)."""

    __slots__ = ()


def escape(value: Any) -> Html:
    """``value`` as text in HTML (None as an empty string); ``Html`` passes unchanged."""
    if isinstance(value, Html):
        return value
    return Html(_stdlib_html.escape("" if value is None else str(value), quote=True))


def html(template: str, *values: Any) -> Html:
    """``template`` (markup written here, never data) with its ``{}`` fields filled by the
    escaped ``values``."""
    return Html(template.format(*(escape(v) for v in values)))


def join(parts: Iterable[Any], separator: str = "") -> Html:
    """The parts, each escaped unless ``Html``, joined by the markup ``separator``."""
    return Html(separator.join(escape(p) for p in parts))


def query(path: str, params: Mapping[str, Any]) -> str:
    """``path?a=1&b=2`` with the parameters whose value is not None or empty, URL-encoded
    (escape it again where it goes into an attribute: ``html()`` does)."""
    given = {k: v for k, v in params.items() if v is not None and v != ""}
    return path + ("?" + urlencode(given) if given else "")
