"""Server-rendered SVG charts for the dashboard: no script, no inline style (the CSP stays strict), every label
escaped (reviewer names and run names are user input)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#2456d6", "#d92d20", "#039855", "#f79009", "#7a5af8", "#0e9384", "#c11574", "#667085"]
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 46


@dataclass
class Series:
    label: str
    values: list[float]


def _nice_max(value: float, percent: bool) -> float:
    if percent:
        return 1.0
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _n(value: float) -> str:
    return f"{value:.1f}"


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def bar_chart(
    categories: list[str],
    series: list[Series],
    *,
    chart_id: str,
    title: str,
    stacked: bool = False,
    percent: bool = False,
    unit: str = "",
    width: int = WIDTH,
) -> SafeString:
    """Bars per category: one bar per series side by side, or stacked. Each bar carries a <title> tooltip."""
    n, k = len(categories), max(len(series), 1)
    if n == 0 or not series:
        return format_html('<p class="muted chart-empty" id="{}">No data yet.</p>', chart_id)
    totals = (
        [sum(s.values[i] for s in series) for i in range(n)] if stacked else [max(s.values[i] for s in series) for i in range(n)]
    )
    top = _nice_max(max(totals), percent)
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar_w = slot * 0.8 / (1 if stacked else k)
    parts = [
        format_html(
            '<svg class="chart" id="{}" viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet">',
            chart_id,
            width,
            HEIGHT + 22 * ((len(series) + 3) // 4),
            title,
        )
    ]
    for frac in (0, 0.5, 1):  # grid lines with their values
        y = TOP + plot_h * (1 - frac)
        parts.append(format_html('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#d9dee7"/>', LEFT, width - RIGHT, _n(y), _n(y)))
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#667085">{}</text>',
                LEFT - 4,
                _n(y + 4),
                _fmt(top * frac, percent),
            )
        )
    for i, category in enumerate(categories):
        x0 = LEFT + slot * i + slot * 0.1
        base = 0.0
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * (value / top if top else 0)
            x = x0 if stacked else x0 + bar_w * j
            y = TOP + plot_h - h - (plot_h * base / top if stacked else 0)
            if value > 0:
                parts.append(
                    format_html(
                        '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} {}{}</title></rect>',
                        _n(x),
                        _n(y),
                        _n(max(bar_w - 1, 1)),
                        _n(h),
                        PALETTE[j % len(PALETTE)],
                        category,
                        s.label,
                        _fmt(value, percent),
                        unit,
                    )
                )
            if stacked:
                base += value
    step = max(1, -(-n // (8 * width // WIDTH)))  # at most 8 category labels per 640 units
    for i in range(0, n, step):
        x = LEFT + slot * (i + 0.5)
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="#667085">{}</text>',
                _n(x),
                HEIGHT - BOTTOM + 16,
                categories[i],
            )
        )
    for j, s in enumerate(series):  # legend, four to a row
        x, y = LEFT + (j % 4) * 150, HEIGHT - 8 + 22 * (j // 4)
        parts.append(format_html('<rect x="{}" y="{}" width="10" height="10" fill="{}"/>', x, y - 9, PALETTE[j % len(PALETTE)]))
        parts.append(
            format_html('<text class="legend" x="{}" y="{}" font-size="12" fill="#1d2430">{}</text>', x + 14, y, s.label)
        )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # every part is format_html's output: its arguments escaped
