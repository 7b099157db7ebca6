"""docs/configuration.md documents every configuration key, so the reference cannot fall
behind lightbus_sync/config.py.

Every field of every attrs class in ``lightbus_sync.config`` must be mentioned in the page
by its path in the configuration tree. The tree is walked from ``RootConfig``; a mapping
field such as ``apis: dict[str, ApiConfig]`` contributes ``apis`` and then
``apis.<name>.*``. A key counts as mentioned when the page has an inline code span
(outside fenced code blocks) that is

- its full dotted path (``bus.runner.threads``; ``apis.default.*`` and any
  ``apis.<...>.*`` spelling count as ``apis.<name>.*``), or
- a path relative to the current section, whose heading holds the section's path as its
  first code span (a row ``threads`` under the heading ``bus.runner``; a row
  ``transport.redis.url`` under ``bus.schema``).

Mentioning a path mentions its prefixes (``transport.redis.url`` covers ``transport``
and ``transport.redis``). Attrs classes that are not reachable from ``RootConfig`` must
have each field's name in a code span somewhere on the page.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path
from typing import Any, Iterator

import attrs

from lightbus_sync import config as config_module

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
MAPPING_SEGMENT = "<name>"

_FENCED = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_API_SECTION = re.compile(r"^apis\.(default|<[^>.]*>)(?=\.|$)")


def _config_classes() -> list[type]:
    return [
        value for _, value in inspect.getmembers(config_module, inspect.isclass)
        if attrs.has(value) and value.__module__ == config_module.__name__
    ]


def _attrs_classes_in(tp: Any) -> Iterator[tuple[type, bool]]:
    """The attrs classes a field type holds: (class, behind a str-keyed mapping?)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        for arg in typing.get_args(tp):
            yield from _attrs_classes_in(arg)
    elif origin in (dict, typing.Dict) or (origin is not None and origin.__name__ == "Mapping"):
        args = typing.get_args(tp)
        if len(args) == 2:
            for cls, _ in _attrs_classes_in(args[1]):
                yield cls, True
    elif isinstance(tp, type) and attrs.has(tp):
        yield tp, False


def _tree(cls: type, prefix: str = "", seen: frozenset = frozenset()) -> Iterator[tuple[str, type]]:
    """(dotted path, owning class) of every field reachable from ``cls``."""
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        path = f"{prefix}{field.name}"
        yield path, cls
        for child, behind_mapping in _attrs_classes_in(hints[field.name]):
            if child in seen:
                continue
            child_prefix = f"{path}.{MAPPING_SEGMENT}." if behind_mapping else f"{path}."
            yield from _tree(child, child_prefix, seen | {cls})


def _normalise(path: str) -> str:
    return _API_SECTION.sub(f"apis.{MAPPING_SEGMENT}", path.strip())


def _with_prefixes(path: str) -> set[str]:
    parts = path.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


def _mentions(text: str) -> tuple[set[str], set[str]]:
    """(paths mentioned, every code span's text) in the page, outside fenced blocks."""
    prose = _FENCED.sub("", text)
    mentioned: set[str] = set()
    spans: set[str] = set()
    # Split the page into sections at headings; each section's prefix is the first code
    # span of its heading (the top of the page and plain headings have none).
    positions = [(m.start(), m.group(2)) for m in _HEADING.finditer(prose)]
    bounds = [(0, "")] + positions
    for index, (start, heading) in enumerate(bounds):
        end = bounds[index + 1][0] if index + 1 < len(bounds) else len(prose)
        body = prose[start:end]
        heading_spans = _CODE_SPAN.findall(re.sub(r"\{#[^}]*\}", "", heading))
        prefix = _normalise(heading_spans[0]) if heading_spans else ""
        for span in _CODE_SPAN.findall(body):
            spans.add(span.strip())
            candidate = span.strip().rstrip(":")
            if not re.fullmatch(r"[A-Za-z_<>][\w.<>]*", candidate):
                continue
            mentioned |= _with_prefixes(_normalise(candidate))
            if prefix:
                mentioned |= _with_prefixes(_normalise(f"{prefix}.{candidate}"))
    return mentioned, spans


def test_the_walk_finds_the_configuration_tree():
    paths = {path for path, _ in _tree(config_module.RootConfig)}
    # a few known keys, so a broken walk cannot make the main test pass vacuously
    for expected in (
        "service_name",
        "bus.runner.threads",
        "bus.schema.transport.redis.url",
        "apis.<name>.validate.incoming",
        "apis.<name>.event_transport.redis.acknowledgement_timeout",
        "apis.<name>.rpc_transport.redis.rpc_retry_delay",
        "plugins.internal_state.ping_interval",
    ):
        assert expected in paths


def test_every_config_field_is_documented():
    text = PAGE.read_text(encoding="utf-8")
    mentioned, spans = _mentions(text)
    missing = []
    reached: set[type] = {config_module.RootConfig}
    for path, owner in _tree(config_module.RootConfig):
        reached.add(owner)
        if path not in mentioned:
            missing.append(f"{path}  ({owner.__name__})")
    for cls in _config_classes():
        if cls in reached:
            continue
        for field in attrs.fields(cls):
            if field.name not in spans:
                missing.append(f"{cls.__name__}.{field.name}  (not reachable from RootConfig)")
    assert not missing, (
        f"{PAGE.name} does not document these configuration keys (add each to the table of its "
        f"section, whose heading names the section's path in backticks):\n  " + "\n  ".join(missing)
    )
