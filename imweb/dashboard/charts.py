"""Charts of the dashboard as server-rendered inline SVG: no script and no inline style (the CSP allows neither),
colours from classes in dashboard.css, and a text alternative for each (<title>/<desc> and a table of the numbers
the template renders visually hidden).

A chart here is a line chart over time buckets: one line per series, a gap where a series has no value (a median
latency in a minute without deliveries), the y axis from zero to a round maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from imweb.dashboard import metrics

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 26
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass
class Line:
    key: str
    label: str
    values: list[float | None]


@dataclass
class Chart:
    """One chart, ready for the template: the SVG, a legend, a one-line summary and the numbers as rows."""

    key: str
    title: str
    summary: str
    svg: SafeString
    lines: list[Line]
    labels: list[str]
    unit: str = ""
    rows: list[tuple[str, list[str]]] = field(default_factory=list)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (at least 1): a y axis whose
    top and middle are round numbers."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "none"
    text = f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


def bucket_label(bucket: datetime, resolution: int) -> str:
    if resolution == metrics.MINUTE:
        return f"{bucket:%H:%M}"
    if resolution == metrics.HOUR:
        return f"{bucket:%a %H:00}"
    return f"{bucket:%d %b}"


def x_of(index: int, count: int) -> float:
    return LEFT + (PLOT_W * index / (count - 1) if count > 1 else PLOT_W / 2)


def y_of(value: float, top: float) -> float:
    return TOP + PLOT_H * (1 - value / top)


def _segments(values: list[float | None]) -> list[list[int]]:
    """Runs of indexes with a value: a line is broken where a series has none."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(index)
    if current:
        runs.append(current)
    return runs


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def svg(key: str, title: str, description: str, lines: list[Line], labels: list[str], unit: str = "") -> SafeString:
    """The SVG of a line chart of `lines` over buckets named `labels` (first, middle and last are shown)."""
    count = len(labels)
    highest = max((v for line in lines for v in line.values if v is not None), default=0.0)
    top = nice_ceiling(highest)
    title_id, desc_id = f"chart-{key}-title", f"chart-{key}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart__svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{title_id} {desc_id}" data-top="{_fmt(top)}">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
        '<g class="chart__grid" aria-hidden="true">',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = _fmt(y_of(top * fraction, top))
        parts.append(f'<line class="chart__gridline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(
            f'<text class="chart__tick" x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(number(top * fraction, unit if fraction == 1.0 else ''))}</text>"
        )
    if count:
        for index, anchor in ((0, "start"), (count // 2, "middle"), (count - 1, "end")):
            parts.append(
                f'<text class="chart__tick" x="{_fmt(x_of(index, count))}" y="{HEIGHT - 6}" '
                f'text-anchor="{anchor}">{escape(labels[index])}</text>'
            )
    parts.append("</g>")
    for position, line in enumerate(lines):
        data = ",".join("" if v is None else _fmt(v) for v in line.values)
        parts.append(
            f'<g class="chart__series chart__series--{position + 1}" data-series="{escape(line.key)}" '
            f'data-values="{data}">'
        )
        for run in _segments(line.values):
            points = " ".join(f"{_fmt(x_of(i, count))},{_fmt(y_of(line.values[i] or 0.0, top))}" for i in run)
            if len(run) == 1:
                x, y = points.split(",")
                parts.append(f'<circle class="chart__dot" cx="{x}" cy="{y}" r="3"/>')
            else:
                parts.append(
                    f'<polyline class="chart__line" points="{points}" fill="none" stroke-width="2" '
                    'stroke-linejoin="round" stroke-linecap="round" vector-effect="non-scaling-stroke"/>'
                )
        parts.append("</g>")
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text above is escaped; the rest are numbers)


def chart(
    key: str, title: str, lines: list[Line], buckets: list[datetime], resolution: int, *, unit: str = "",
    summary: str = "",
) -> Chart:  # fmt: skip
    """A chart with its text alternative: the description names each line's total (or, for a median, its latest
    value) and the table lists every bucket."""
    labels = [bucket_label(b, resolution) for b in buckets]
    said = []
    for line in lines:
        present = [v for v in line.values if v is not None]
        if unit:
            latest = next((v for v in reversed(line.values) if v is not None), None)
            said.append(
                f"{line.label}: latest {number(latest, unit)}, highest {number(max(present, default=None), unit)}"
            )
        else:
            said.append(f"{line.label}: {number(sum(present))} in all, at most {number(max(present, default=0))}")
    span = f"from {labels[0]} to {labels[-1]} UTC" if labels else ""
    description = f"{title}, {span}. " + "; ".join(said) + "."
    if not summary:
        summary = _summary(lines, unit)
    rows = [(label, [number(line.values[i], unit) for line in lines]) for i, label in enumerate(labels)]
    return Chart(
        key=key,
        title=title,
        summary=summary,
        svg=svg(key, title, description, lines, labels, unit),
        lines=lines,
        labels=labels,
        unit=unit,
        rows=rows,
    )


def _summary(lines: list[Line], unit: str) -> str:
    """The line under a chart's title: totals of counts, the latest value of a measure."""
    if unit:
        latest = [(line, next((v for v in reversed(line.values) if v is not None), None)) for line in lines]
        if all(value is None for _, value in latest):
            return "Nothing to time in this range"
        return "Latest: " + ", ".join(f"{line.label.lower()} {number(value, unit)}" for line, value in latest)
    totals = [(line.label, sum(v for v in line.values if v is not None)) for line in lines]
    if len(totals) == 1:
        return f"In all: {number(totals[0][1])}"
    return "In all: " + ", ".join(f"{label.lower()} {number(total)}" for label, total in totals)


BUCKET_WORDS = {metrics.MINUTE: "minute", metrics.HOUR: "hour", metrics.DAY: "day"}

# The ranges of the Trends section: bucket size, how many buckets, and how it is said.
RANGES = {
    "hour": (metrics.MINUTE, 60, "Last hour, per minute"),
    "day": (metrics.HOUR, 24, "Last 24 hours, per hour"),
    "month": (metrics.DAY, 30, "Last 30 days, per day"),
}


def trends(range_name: str, at: datetime | None = None) -> list[Chart]:
    """The Trends charts for one range: messages (sent here, to and from federation), sign-ups, active people,
    federation delivery latency (median) and failures."""
    resolution, count, _ = RANGES[range_name]
    data = metrics.series(
        resolution,
        count,
        [
            metrics.MESSAGES_LOCAL, metrics.MESSAGES_FROM_FEDERATION, metrics.MESSAGES_TO_FEDERATION, metrics.SIGNUPS,
            metrics.ACTIVE_PEOPLE, metrics.FEDERATION_LATENCY, metrics.FEDERATION_FAILURES,
        ],
        at,
    )  # fmt: skip
    v, b = data.values, data.buckets
    return [
        chart(
            "messages",
            "Messages",
            [
                Line("local", "Sent here", v[metrics.MESSAGES_LOCAL]),
                Line("from_federation", "From federation", v[metrics.MESSAGES_FROM_FEDERATION]),
                Line("to_federation", "To federation", v[metrics.MESSAGES_TO_FEDERATION]),
            ],
            b,
            resolution,
        ),
        chart("signups", "Sign-ups", [Line("signups", "Sign-ups", v[metrics.SIGNUPS])], b, resolution),
        chart(
            "active",
            "Active people (sent a message)",
            [Line("active", "People", v[metrics.ACTIVE_PEOPLE])],
            b,
            resolution,
            # Distinct people per bucket do not add up across buckets: say the busiest one instead.
            summary=f"Most in one {BUCKET_WORDS[resolution]}: {number(max(v[metrics.ACTIVE_PEOPLE], default=0))}",
        ),
        chart(
            "latency",
            "Federation delivery time (median)",
            [Line("latency", "Median", v[metrics.FEDERATION_LATENCY])],
            b,
            resolution,
            unit="s",
        ),
        chart(
            "failures",
            "Federation failures",
            [Line("failures", "Failed stanzas", v[metrics.FEDERATION_FAILURES])],
            b,
            resolution,
        ),
    ]
