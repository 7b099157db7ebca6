"""The dashboard's pages, as HTML from the records the ``ops`` functions return.

Each function takes what a page shows and a ``Links`` (the app's base path) and
returns ``Html``; every value from Redis goes through ``html()``, so it is text.
"""

from __future__ import annotations

import datetime
from typing import Callable, Mapping, Optional, Sequence

import attrs

from ..ops.dead_letters import DeadLetterRecord
from ..ops.formatting import duration, timestamp, value_json
from ..ops.inspect import InspectedEvent
from ..ops.status import BusStatus, GroupStatus, StreamStatus
from .chart import lag_chart
from .html import Html, html, join, query
from .outbox import OutboxBacklog
from .security import CSRF_FIELD, TOKEN_FIELD

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:baseline}
header a{color:#cfd8e3;text-decoration:none}header a.current{color:#fff;font-weight:600}
header .title{font-weight:700;margin-right:12px}main{padding:16px 20px}
table{border-collapse:collapse;background:#fff;margin:8px 0 20px;width:100%}
th,td{border-bottom:1px solid #e3e6ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7480;fill:#6b7480;font-size:11px}.warn{color:#a4370a;font-weight:600}
code,pre{font:12px ui-monospace,monospace}pre{white-space:pre-wrap;word-break:break-all;margin:0}
.chart .line{fill:none;stroke:#2f6fd0;stroke-width:1.5}.chart circle.line{fill:#2f6fd0}
.chart .axis{stroke:#9aa3ad}.box{background:#fff;border:1px solid #e3e6ea;padding:12px;margin:8px 0}
.refused{background:#fde8e4;border:1px solid #e5a596;padding:12px}.done{background:#e5f4e7;
border:1px solid #9fd0a6;padding:12px}button{padding:4px 12px}footer{padding:8px 20px;color:#6b7480}
"""

NAV = (("streams", "/", "Streams"), ("groups", "/groups", "Groups"), ("events", "/events", "Events"),
       ("dead-letters", "/dead-letters", "Dead letters"))


@attrs.frozen
class Links:
    """Makes the app's URLs under ``base`` (the WSGI ``SCRIPT_NAME``, no trailing /)."""

    base: str

    def __call__(self, path: str, **params: object) -> str:
        return query(self.base + path, params)


def layout(title: str, body: Html, links: Links, current: str, *, actions_enabled: bool,
           servers: Sequence[str], refresh: Optional[int] = None) -> Html:
    nav = join(html('<a href="{}"{}>{}</a>', links(path), Html(' class="current"') if key == current else "", label)
               for key, path, label in NAV)
    meta = html('<meta http-equiv="refresh" content="{}">', refresh) if refresh else ""
    mode = "actions enabled (token required)" if actions_enabled else "read-only"
    return html(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">{}<title>{} · lightbus_sync</title>'
        '<style>{}</style></head><body><header><span class="title">lightbus_sync</span>{}</header>'
        '<main><h1>{}</h1>{}</main><footer>Redis: {} · {} · {}</footer></body></html>',
        meta, title, Html(STYLE), nav, title, body, ", ".join(servers) or "-", mode,
        timestamp(datetime.datetime.now(datetime.timezone.utc)),
    )


def _age(moment: Optional[datetime.datetime], now: float) -> Html:
    if moment is None:
        return Html("-")
    return html('{}<br><span class="muted">{} ago</span>', timestamp(moment), duration(now - moment.timestamp()))


def _trim(s: StreamStatus) -> Html:
    """The stream's trim point and the group holding it (``ops.status`` fills them in)."""
    stale = html('<br><span class="warn">stale: {}</span>', ", ".join(s.stale_groups)) if s.stale_groups else Html("")
    if s.trim_held_by is None:
        what = "no groups" if not s.groups else "nothing (every group is stale)"
        return html('<span class="muted">{}</span>{}', what, stale)
    return html('<code>{}</code><br><span class="muted">held by {} ({})</span>{}',
                s.trim_point, s.trim_held_by, s.trim_reason, stale)


def _backlog(item: Optional[OutboxBacklog]) -> Html:
    if item is None:
        return Html("-")
    if not item.waiting:
        return Html("0")
    return html('{}<br><span class="muted">oldest {}</span>', item.waiting, duration(item.oldest_age))


# --- streams ---------------------------------------------------------------------------


def streams_page(status: BusStatus, links: Links, backlog: Optional[Mapping[str, OutboxBacklog]]) -> Html:
    if not status.streams:
        return Html('<p>No streams found. Name APIs with <code>--api</code>, or load a bus module with '
                    '<code>--bus</code>.</p>')
    now = status.time.timestamp()
    head = ["Stream", "API", "Length", "First entry", "Last entry", "Trim point", "Dead letters"]
    if backlog is not None:
        head.append("Outbox backlog")
    rows = []
    for s in status.streams:
        cells = [
            html('<td><code>{}</code></td>', s.stream),
            html('<td><a href="{}">{}</a></td>', links("/events", api=s.api_name, event=s.event_name), s.api_name),
            html('<td class="n">{}</td>', s.length if s.exists else "(none)"),
            html('<td>{}</td>', _age(s.first_time, now)),
            html('<td>{}</td>', _age(s.last_time, now)),
            html('<td>{}</td>', _trim(s)),
            html('<td class="n"><a href="{}"{}>{}</a></td>', links("/dead-letters", stream=s.stream),
                 Html(' class="warn"') if s.dead_letters else "", s.dead_letters),
        ]
        if backlog is not None:
            cells.append(html('<td class="n">{}</td>', _backlog(backlog.get(s.stream))))
        rows.append(html("<tr>{}</tr>", join(cells)))
    return html('<table id="streams"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
                join(html("<th>{}</th>", h) for h in head), join(rows))


# --- groups ----------------------------------------------------------------------------


def _oldest(group: GroupStatus) -> Html:
    if not group.oldest_pending_id:
        return Html("-")
    return html('<code>{}</code><br><span class="muted">idle {} · added {} ago · {} · {} deliveries</span>',
                group.oldest_pending_id, duration(group.oldest_pending_age),
                duration(group.oldest_pending_entry_age), group.oldest_pending_consumer or "-",
                "-" if group.oldest_pending_deliveries is None else group.oldest_pending_deliveries)


def _consumers(group: GroupStatus) -> Html:
    if not group.consumers:
        return Html('<span class="muted">none</span>')
    return join((html('{} <span class="muted">({} pending, idle {})</span>', c.name, c.pending, duration(c.idle))
                 for c in group.consumers), "<br>")


def groups_page(status: BusStatus, links: Links,
                series: Callable[[StreamStatus, GroupStatus], Sequence[tuple[float, Optional[int]]]],
                sample_interval: float) -> Html:
    groups = [(s, g) for s in status.streams for g in s.groups]
    if not groups:
        return Html("<p>No consumer groups on these streams.</p>")
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    rows = []
    for s, g in groups:
        holds = s.trim_held_by == g.name
        rows.append(html(
            '<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class="n">{}</td><td>{}</td>'
            '<td class="n">{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td></tr>',
            s.stream, g.name, _consumers(g), g.pending, _oldest(g),
            "unknown" if g.lag is None else g.lag,
            html('<span class="warn">yes</span> <code>{}</code> ({})', s.trim_point, s.trim_reason) if holds else "-",
            "?" if g.dead_letters is None else g.dead_letters, g.replays,
            lag_chart(series(s, g), now),
        ))
    return html(
        '<p class="muted">Lag sampled every {} while the dashboard runs; this page reloads itself.</p>'
        '<table id="groups"><thead><tr><th>Stream</th><th>Group</th><th>Consumers</th><th>Pending</th>'
        '<th>Oldest pending</th><th>Lag</th><th>Holds trim point</th><th>Dead letters</th><th>Replays</th>'
        '<th>Lag over time</th></tr></thead><tbody>{}</tbody></table>',
        duration(sample_interval), join(rows))


# --- events ----------------------------------------------------------------------------


def _parameters(parameters: Mapping[str, object]) -> Html:
    if not parameters:
        return Html('<span class="muted">none</span>')
    return join((html('<code>{}</code> = <code class="value">{}</code>', name, value_json(value))
                 for name, value in parameters.items()), "<br>")


def _raw_fields(fields: Mapping[str, str]) -> Html:
    return join((html('<code>{}</code> = <code class="value">{}</code>', k, v) for k, v in fields.items()), "<br>")


def events_page(apis: Sequence[str], api: Optional[str], event: Optional[str], limit: int,
                events: Sequence[InspectedEvent], links: Links) -> Html:
    options = join(html('<option value="{}"{}>{}</option>', name, Html(" selected") if name == api else "", name)
                   for name in apis)
    form = html(
        '<form method="get" action="{}" class="box">API <input name="api" list="apis" value="{}" required> '
        '<datalist id="apis">{}</datalist> event <input name="event" value="{}" placeholder="(all)"> '
        'limit <input name="limit" type="number" min="1" max="500" value="{}"> <button>Show</button></form>',
        links("/events"), api or "", options, event or "", limit)
    if not api:
        return html('{}<p>Choose an API: {}</p>', form,
                    join((html('<a href="{}">{}</a>', links("/events", api=a), a) for a in apis), ", ") or "none found")
    if not events:
        return html("{}<p>No events.</p>", form)
    rows = []
    for e in events:
        if e.malformed is not None:
            rows.append(html('<tr class="malformed"><td>{}</td><td><code>{}</code></td><td class="warn">malformed: {}'
                             '</td><td>{}</td><td>{}</td></tr>',
                             timestamp(e.time), e.entry_id, e.malformed, e.event_id or "-", _raw_fields(e.fields)))
        else:
            rows.append(html('<tr><td>{}</td><td><code>{}</code></td><td>{} v{}</td><td><code>{}</code></td>'
                             '<td>{}</td></tr>',
                             timestamp(e.time), e.entry_id, e.canonical_name, e.version, e.event_id,
                             _parameters(e.parameters)))
    return html('{}<table id="events"><thead><tr><th>Time</th><th>Entry</th><th>Event</th><th>Event id</th>'
                '<th>Parameters</th></tr></thead><tbody>{}</tbody></table>', form, join(rows))


# --- dead letters ----------------------------------------------------------------------


def _letter_event(letter: DeadLetterRecord) -> Html:
    event = letter.event()
    if event is not None and event.malformed is None:
        return html("{}<br>{}", event.canonical_name, _parameters(event.parameters))
    return _raw_fields(letter.fields)


def dead_letters_page(letters: Sequence[DeadLetterRecord], stream: Optional[str], links: Links,
                      actions_enabled: bool) -> Html:
    scope = html(' of <code>{}</code> (<a href="{}">all streams</a>)', stream, links("/dead-letters")) if stream else ""
    if not letters:
        return html("<p>No dead letters{}.</p>", scope)
    rows = []
    for letter in letters:
        actions = Html("")
        if actions_enabled:
            actions = html('<a href="{}">replay</a> · <a href="{}">purge</a>',
                           links("/dead-letters/confirm", action="replay", stream=letter.dead_stream, id=letter.dead_id),
                           links("/dead-letters/confirm", action="purge", stream=letter.dead_stream, id=letter.dead_id))
        moment = letter.time or letter.dead_time
        rows.append(html(
            '<tr><td><a href="{}"><code>{}</code></a><br><span class="muted">{}</span></td><td><code>{}</code></td>'
            '<td>{}</td><td>{}</td><td class="n">{}</td><td>{}</td><td><pre>{}</pre></td><td>{}</td><td>{}</td></tr>',
            links("/dead-letters/show", stream=letter.dead_stream, id=letter.dead_id), letter.dead_id,
            timestamp(moment), letter.stream, letter.group or "-", letter.listener or "-",
            "-" if letter.delivery_count is None else letter.delivery_count, letter.reason or "-",
            f"{letter.error_type}: {letter.error}" if letter.error_type else (letter.error or "-"),
            _letter_event(letter), actions,
        ))
    note = "" if actions_enabled else Html(
        '<p class="muted">Read-only: start the dashboard with an action token to replay or purge.</p>')
    return html('<p>{} dead letter(s){}.</p>{}<table id="dead-letters"><thead><tr><th>Dead letter</th><th>Stream</th>'
                '<th>Group</th><th>Listener</th><th>Attempts</th><th>Reason</th><th>Error</th><th>Event</th>'
                '<th>Actions</th></tr></thead><tbody>{}</tbody></table>',
                len(letters), scope, note, join(rows))


def dead_letter_page(letter: DeadLetterRecord, links: Links, actions_enabled: bool) -> Html:
    meta = [("dead-letter stream", letter.dead_stream), ("original entry", f"{letter.original_id or '-'} in {letter.stream}"),
            ("group", letter.group), ("listener", letter.listener), ("consumer", letter.consumer),
            ("attempts", letter.delivery_count), ("reason", letter.reason),
            ("error", f"{letter.error_type}: {letter.error}" if letter.error_type else letter.error),
            ("event id", letter.event_id), ("time", timestamp(letter.time or letter.dead_time))]
    rows = join(html('<tr><th>{}</th><td><pre>{}</pre></td></tr>', k, "-" if v in (None, "") else v) for k, v in meta)
    actions = Html("")
    if actions_enabled:
        actions = html('<p><a href="{}">replay</a> · <a href="{}">purge</a></p>',
                       links("/dead-letters/confirm", action="replay", stream=letter.dead_stream, id=letter.dead_id),
                       links("/dead-letters/confirm", action="purge", stream=letter.dead_stream, id=letter.dead_id))
    return html('<table id="dead-letter">{}<tr><th>event</th><td>{}</td></tr></table>{}', rows, _letter_event(letter),
                actions)


ACTIONS = {
    "replay": "Replay sends the event back to its original consumer group (only), and removes the dead letter.",
    "purge": "Purge deletes the dead letter for good.",
}


def confirm_page(action: str, letter: DeadLetterRecord, csrf: str, links: Links) -> Html:
    return html(
        '<div class="box"><p>{}</p><p>Dead letter <code>{}</code> of <code>{}</code> (group {}, listener {}).</p>'
        '<form method="post" action="{}"><input type="hidden" name="{}" value="{}">'
        '<input type="hidden" name="stream" value="{}"><input type="hidden" name="id" value="{}">'
        '<input type="hidden" name="confirm" value="yes">'
        '<label>Action token <input type="password" name="{}" autocomplete="off" required></label> '
        '<button type="submit" id="confirm">{} this dead letter</button> <a href="{}">cancel</a></form></div>',
        ACTIONS[action], letter.dead_id, letter.stream, letter.group or "-", letter.listener or "-",
        links("/dead-letters/" + action), CSRF_FIELD, csrf, letter.dead_stream, letter.dead_id, TOKEN_FIELD,
        action.capitalize(), links("/dead-letters", stream=letter.stream),
    )


def message_page(kind: str, text: str, back: str) -> Html:
    """``kind``: ``done`` or ``refused``."""
    return html('<div class="{}" id="message">{}</div><p><a href="{}">back</a></p>', kind, text, back)
