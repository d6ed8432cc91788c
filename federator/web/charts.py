"""Charts drawn on the server as accessible SVG (pure: numbers in, markup out).

Each chart is an ``<svg role="img">`` named by its own ``<title>`` and
described by a ``<desc>`` that states the figures' range in words; the page
puts a table of the same figures beside it, so nothing depends on seeing the
picture, and no JavaScript is needed. Bars carry ``data-label`` and
``data-value`` (what the tests read).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil, log10

from markupsafe import Markup, escape

BLUE = "#1d70b8"  # GOV.UK blue: 5.2:1 on white
TEXT = "#0b0c0c"
RULE = "#b1b4b6"
FONT = 'font-family="arial, sans-serif" font-size="14"'


def nice_top(value: float) -> float:
    """The axis maximum: 1, 2 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1
    power = 10 ** int(log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _open(chart_id: str, title: str, desc: str, width: int, height: int) -> str:
    cid = escape(chart_id)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="app-chart" id="{cid}" '
            f'role="img" aria-labelledby="{cid}-title {cid}-desc" '
            f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">'
            f'<title id="{cid}-title">{escape(title)}</title>'
            f'<desc id="{cid}-desc">{escape(desc)}</desc>')


def summary(bars: Sequence[tuple[str, float]], unit: str) -> str:
    """The figures in words: how many, the total and the highest."""
    if not bars or not any(v for _, v in bars):
        return f"No {unit} in this period."
    label, top = max(bars, key=lambda pair: pair[1])
    total = sum(v for _, v in bars)
    return f"{_number(total)} {unit} in all; the highest is {label}, with {_number(top)}."


def column_chart(chart_id: str, title: str, bars: Sequence[tuple[str, float]], *,
                 unit: str, top: float | None = None, suffix: str = "",
                 desc: str | None = None) -> Markup:
    """Upright bars, one per label (days, weeks, hours), left to right; every
    ``ceil(n / 12)``-th label is written under the axis. ``top`` fixes the axis
    (100 for a percentage); ``suffix`` follows each value (``%``)."""
    width, height, left, bottom, head = 640, 260, 48, 40, 16
    inner_w, inner_h = width - left - 8, height - bottom - head
    axis = top if top is not None else nice_top(max((v for _, v in bars), default=0))
    parts = [_open(chart_id, title, desc or summary(bars, unit), width, height)]
    base = head + inner_h
    parts.append(f'<g {FONT} fill="{TEXT}">'
                 f'<text x="{left - 6}" y="{head + 5}" text-anchor="end">'
                 f'{_number(axis)}{escape(suffix)}</text>'
                 f'<text x="{left - 6}" y="{base + 5}" text-anchor="end">0</text></g>')
    parts.append(f'<line x1="{left}" y1="{head}" x2="{width - 8}" y2="{head}" '
                 f'stroke="{RULE}" stroke-dasharray="4 4"/>')
    every = max(1, ceil(len(bars) / 12))
    slot = inner_w / max(1, len(bars))
    for i, (label, value) in enumerate(bars):
        h = 0.0 if axis <= 0 else inner_h * min(value, axis) / axis
        x = left + i * slot + slot * 0.15
        parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{h:.1f}" fill="{BLUE}" data-label="{escape(label)}" '
                     f'data-value="{_number(value)}"/>')
        if i % every == 0:
            parts.append(f'<text {FONT} fill="{TEXT}" x="{x + slot * 0.35:.1f}" '
                         f'y="{base + 20}" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 8}" y2="{base}" '
                 f'stroke="{TEXT}"/></svg>')
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def bar_chart(chart_id: str, title: str, bars: Sequence[tuple[str, float]], *,
              unit: str, desc: str | None = None) -> Markup:
    """Level bars, one per category (flags, organisations), top to bottom, each
    with its label before it and its value after it (labels cut at 28 characters)."""
    width, label_w, row, head = 640, 230, 30, 8
    height = head * 2 + row * max(1, len(bars))
    bar_w = width - label_w - 60
    axis = nice_top(max((v for _, v in bars), default=0))
    parts = [_open(chart_id, title, desc or summary(bars, unit), width, height)]
    if not bars:
        parts.append(f'<text {FONT} fill="{TEXT}" x="8" y="{head + 20}">None</text>')
    for i, (label, value) in enumerate(bars):
        y = head + i * row
        shown = label if len(label) <= 28 else label[:27] + "…"
        w = bar_w * value / axis if axis else 0
        parts.append(f'<text {FONT} fill="{TEXT}" x="{label_w - 8}" y="{y + 19}" '
                     f'text-anchor="end">{escape(shown)}</text>'
                     f'<rect x="{label_w}" y="{y + 5}" width="{w:.1f}" height="{row - 10}" '
                     f'fill="{BLUE}" data-label="{escape(label)}" data-value="{_number(value)}"/>'
                     f'<text {FONT} fill="{TEXT}" x="{label_w + w + 6:.1f}" y="{y + 19}">'
                     f'{_number(value)}</text>')
    parts.append(f'<line x1="{label_w}" y1="{head}" x2="{label_w}" y2="{height - head}" '
                 f'stroke="{TEXT}"/></svg>')
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()
