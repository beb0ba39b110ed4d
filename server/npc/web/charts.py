"""Charts of the regulator's reports, drawn on the server as inline SVG: no script, nothing
loaded from elsewhere (the site's Content-Security-Policy allows neither), readable in a
screenshot and by a screen reader.

One kind of chart covers the reports: bars per category (a day, a week, an operator), one bar
per series side by side or the series stacked, and an optional reference line (the donor's 5
minutes, a deadline's 1 second). Every figure drawn is also a number in the page's data table;
each bar carries its series, category and value (`data-*` attributes and a tooltip `<title>`),
so a test or a reader can compare them.

Colours are the Okabe–Ito palette (told apart with the common colour-vision deficiencies) and
every series is named in a text legend; presentation attributes only, since the site's CSP
forbids inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup, escape

PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
INK = "#1b1b1b"
GRID = "#c8c8c8"
REFERENCE = "#a3131b"

WIDTH = 880
PLOT_LEFT = 72
PLOT_RIGHT = 16
PLOT_TOP = 16
PLOT_HEIGHT = 260
LEGEND_ROW = 22
# Past this many categories the labels under the axis are thinned to every n-th one.
MAX_LABELS = 16


@dataclass(frozen=True)
class Series:
    """One named series of values, one per category (None: nothing to draw there)."""

    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Reference:
    """A horizontal line at `value`, labelled (``5 minutos (art. 20 y 22)``)."""

    value: float
    label: str


@dataclass(frozen=True)
class BarChart:
    """Bars per category, grouped or stacked, in `unit` (the vertical axis's words).

    Attributes:
        title: what the chart shows (the SVG's <title>).
        description: the same in a sentence for a screen reader (the SVG's <desc>).
        categories: the labels under the horizontal axis, in order.
        series: the bars of each category.
        unit: the vertical axis's label (``segundos``).
        stacked: stack the series in one bar per category instead of side by side.
        reference: an optional horizontal line.
        counts: the values are counts: the axis ticks are whole numbers.
        format_value: how a value reads in tooltips and the axis (``%g`` by default).
    """

    title: str
    description: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str
    stacked: bool = False
    reference: Reference | None = None
    counts: bool = False
    format_value: Callable[[float], str] = field(default=lambda v: f"{v:g}")


def nice_ceiling(value: float, *, counts: bool = False) -> tuple[float, float]:
    """(top of the axis, tick step): the smallest 1-2-5 step times 10^k giving at most 5 ticks
    whose top reaches `value`; with `counts`, whole steps only (no half a port)."""
    if value <= 0:
        return (1.0, 1.0) if counts else (1.0, 0.25)
    raw = value / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if counts and step != math.floor(step):
            continue
        if step * 5 >= value:
            return step * math.ceil(value / step), step
    return value, value / 5  # not reached: 10 x magnitude always suffices


def _top(chart: BarChart) -> float:
    if chart.stacked:
        totals = [
            sum(s.values[i] or 0.0 for s in chart.series) for i in range(len(chart.categories))
        ]
        highest = max(totals, default=0.0)
    else:
        highest = max((v for s in chart.series for v in s.values if v is not None), default=0.0)
    if chart.reference is not None:
        highest = max(highest, chart.reference.value)
    return highest


def _text(x: float, y: float, content: str, anchor: str = "middle", size: int = 13) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"'
        f' fill="{INK}">{escape(content)}</text>'
    )


def render_bar_chart(chart: BarChart) -> Markup:
    """The chart as an inline <svg> element, safe to place in a template."""
    count = len(chart.categories)
    plot_width = WIDTH - PLOT_LEFT - PLOT_RIGHT
    per_row = _legend_columns(chart)
    legend_rows = math.ceil(len(chart.series) / per_row)
    axis_y = PLOT_TOP + PLOT_HEIGHT
    height = axis_y + 44 + legend_rows * LEGEND_ROW
    top, step = nice_ceiling(_top(chart), counts=chart.counts)
    slug = "".join(c if c.isalnum() else "-" for c in chart.title.lower())[:40]

    def y_of(value: float) -> float:
        return axis_y - PLOT_HEIGHT * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"'
        f' viewBox="0 0 {WIDTH} {height}" width="100%"'
        f' aria-labelledby="{slug}-t {slug}-d" font-family="system-ui, DejaVu Sans, sans-serif">',
        f'<title id="{slug}-t">{escape(chart.title)}</title>',
        f'<desc id="{slug}-d">{escape(chart.description)}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    ticks = round(top / step)
    for i in range(ticks + 1):
        value = step * i
        y = y_of(value)
        parts.append(
            f'<line x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"'
            f' stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(_text(PLOT_LEFT - 8, y + 4, chart.format_value(value), "end", 12))
    parts.append(
        f'<text x="14" y="{PLOT_TOP + PLOT_HEIGHT / 2:.1f}" text-anchor="middle" font-size="13"'
        f' fill="{INK}" transform="rotate(-90 14 {PLOT_TOP + PLOT_HEIGHT / 2:.1f})">'
        f"{escape(chart.unit)}</text>"
    )
    if count:
        parts.extend(_bars(chart, plot_width, y_of))
    parts.append(
        f'<line x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" y1="{axis_y}" y2="{axis_y}"'
        f' stroke="{INK}" stroke-width="1.5"/>'
    )
    if chart.reference is not None:
        y = y_of(chart.reference.value)
        parts.append(
            f'<line class="reference" x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" y1="{y:.1f}"'
            f' y2="{y:.1f}" stroke="{REFERENCE}" stroke-width="2" stroke-dasharray="8 5"'
            f' data-value="{chart.reference.value:g}"/>'
        )
        # Above the line at its left end, on a white halo: legible over a bar it crosses.
        parts.append(
            f'<text x="{PLOT_LEFT + 6}" y="{y - 6:.1f}" text-anchor="start" font-size="13"'
            f' font-weight="bold" fill="{REFERENCE}" stroke="#ffffff" stroke-width="4"'
            f' paint-order="stroke">{escape(chart.reference.label)}</text>'
        )
    if not count:
        parts.append(_text(PLOT_LEFT + plot_width / 2, axis_y - PLOT_HEIGHT / 2, "Sin datos"))
    parts.extend(_legend(chart, axis_y + 40, per_row))
    parts.append("</svg>")
    return Markup("".join(parts))


def _bars(chart: BarChart, plot_width: float, y_of: Callable[[float], float]) -> list[str]:
    """The bars and the category labels under the axis."""
    count = len(chart.categories)
    slot = plot_width / count
    columns = 1 if chart.stacked else max(len(chart.series), 1)
    bar = min(slot * 0.8 / columns, 48)
    axis_y = y_of(0)
    every = math.ceil(count / MAX_LABELS)
    parts = []
    for index, category in enumerate(chart.categories):
        left = PLOT_LEFT + slot * index + (slot - bar * columns) / 2
        base = 0.0
        for number, series in enumerate(chart.series):
            value = series.values[index]
            if value is None:
                continue
            x = left if chart.stacked else left + bar * number
            bottom = base if chart.stacked else 0.0
            y_top, y_bottom = y_of(bottom + value), y_of(bottom)
            shown = chart.format_value(value)
            parts.append(
                f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar:.1f}"'
                f' height="{max(y_bottom - y_top, 0):.1f}" fill="{PALETTE[number % len(PALETTE)]}"'
                f' stroke="#ffffff" stroke-width="0.5" data-series="{escape(series.name)}"'
                f' data-category="{escape(category)}" data-value="{value:g}">'
                f"<title>{escape(category)}, {escape(series.name)}: {escape(shown)}</title></rect>"
            )
            if chart.stacked:
                base += value
        # Counted from the last: the latest day, where a report's news is, keeps its label.
        if (count - 1 - index) % every == 0:
            parts.append(_text(PLOT_LEFT + slot * (index + 0.5), axis_y + 18, category, size=12))
    return parts


def _legend_columns(chart: BarChart) -> int:
    """How many legend entries fit a row: up to three, fewer for long names (about 7.5 px a
    character at the legend's 13 px)."""
    longest = max((len(s.name) for s in chart.series), default=0)
    return max(1, min(3, int((WIDTH - PLOT_LEFT - PLOT_RIGHT) // (longest * 7.5 + 40))))


def _legend(chart: BarChart, top: float, per_row: int) -> list[str]:
    """A swatch and the name of each series, `per_row` to a row."""
    parts = []
    column_width = (WIDTH - PLOT_LEFT - PLOT_RIGHT) / per_row
    for number, series in enumerate(chart.series):
        row, column = divmod(number, per_row)
        x = PLOT_LEFT + column * column_width
        y = top + row * LEGEND_ROW
        colour = PALETTE[number % len(PALETTE)]
        parts.append(f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="14" height="14" fill="{colour}"/>')
        parts.append(_text(x + 20, y + 1, series.name, "start"))
    return parts
