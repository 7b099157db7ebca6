"""A lag-over-time chart as a small inline SVG (no script, no external file)."""

from __future__ import annotations

from typing import Optional, Sequence

from ..ops.formatting import duration
from .html import Html, html, join

WIDTH = 360
HEIGHT = 80
_PAD_LEFT = 44
_PAD_BOTTOM = 16
_PAD_TOP = 6


def lag_chart(samples: Sequence[tuple[float, Optional[int]]], now: float) -> Html:
    """``samples``: (time, lag) oldest first; a lag of None (unknown) breaks the line.
    The x axis runs from the first sample to ``now``; the y axis from 0 to the highest
    lag seen (at least 1)."""
    known = [(t, lag) for t, lag in samples if lag is not None]
    if not known:
        why = "no samples yet" if not samples else "lag unknown (Redis reports none before 7.0)"
        return html('<svg class="chart" role="img" width="{}" height="{}" viewBox="0 0 {} {}">'
                    '<title>lag over time: {}</title>'
                    '<text x="8" y="{}" class="muted">{}</text></svg>',
                    WIDTH, HEIGHT, WIDTH, HEIGHT, why, HEIGHT // 2, why)
    start = samples[0][0]
    span = max(now - start, 1e-3)
    top = max(max(lag for _, lag in known), 1)
    plot_w = WIDTH - _PAD_LEFT - 4
    plot_h = HEIGHT - _PAD_TOP - _PAD_BOTTOM

    def point(t: float, lag: int) -> str:
        x = _PAD_LEFT + (t - start) / span * plot_w
        y = _PAD_TOP + plot_h - lag / top * plot_h
        return f"{x:.1f},{y:.1f}"

    lines: list[list[str]] = [[]]
    for t, lag in samples:
        if lag is None:
            if lines[-1]:
                lines.append([])
            continue
        lines[-1].append(point(t, lag))
    shapes = []
    for line in lines:
        if len(line) == 1:
            x, y = line[0].split(",")
            shapes.append(html('<circle cx="{}" cy="{}" r="2" class="line"/>', x, y))
        elif line:
            shapes.append(html('<polyline points="{}" class="line"/>', " ".join(line)))
    last = known[-1][1]
    axis_y = _PAD_TOP + plot_h
    return html(
        '<svg class="chart" role="img" width="{}" height="{}" viewBox="0 0 {} {}">'
        '<title>lag over the last {}: now {}, highest {}</title>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>'
        '<text x="{}" y="{}" text-anchor="end" class="muted">{}</text>'
        '<text x="{}" y="{}" text-anchor="end" class="muted">0</text>'
        '<text x="{}" y="{}" class="muted">-{}</text>'
        '<text x="{}" y="{}" text-anchor="end" class="muted">now</text>'
        '{}</svg>',
        WIDTH, HEIGHT, WIDTH, HEIGHT, duration(span), last, top,
        _PAD_LEFT, _PAD_TOP, _PAD_LEFT, axis_y, _PAD_LEFT, axis_y, WIDTH - 4, axis_y,
        _PAD_LEFT - 4, _PAD_TOP + 8, top,
        _PAD_LEFT - 4, axis_y,
        _PAD_LEFT, HEIGHT - 3, duration(span),
        WIDTH - 4, HEIGHT - 3,
        join(shapes),
    )
