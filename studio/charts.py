"""Bar geometry for the small SVG charts a template draws (no JavaScript, no charting library).

A chart is computed here as plain numbers in a fixed coordinate space (the SVG's
viewBox), so the template only places rectangles and text, and the page scales it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

CENT = Decimal("0.01")
WIDTH = 600.0

# Columns (one per month): room for the value above a bar and the label below it.
COLUMNS_HEIGHT = 200.0
COLUMN_TOP = 22.0
COLUMN_BOTTOM = 24.0
# Rows (one per series or account): a label on the left, the value after the bar.
ROW_HEIGHT = 28.0
ROW_GAP = 8.0
ROW_LABEL_WIDTH = 190.0
ROW_VALUE_WIDTH = 90.0
LABEL_CHARACTERS = 26


def dollars(amount: Decimal) -> str:
    """$1,234.50: rounded half up to the cent, as everywhere in Castboard's money."""
    return f"${amount.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def _short(label: str, limit: int = LABEL_CHARACTERS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Bar:
    """One bar: its rectangle, the value written beside it, and its label's position."""

    label: str  # in full (the tooltip and the table)
    short_label: str  # what fits on the chart
    value: Decimal
    text: str  # the value as written, e.g. "$3.20"
    x: float
    y: float
    width: float
    height: float
    label_x: float
    label_y: float
    value_x: float
    value_y: float
    highlight: bool = False


@dataclass(frozen=True)
class Chart:
    """An accessible bar chart: a title and a description in words, then its bars."""

    key: str  # unique on the page: the ids of <title> and <desc>
    title: str
    description: str
    orientation: Literal["columns", "rows"]
    width: float
    height: float
    baseline: float  # y of the axis (columns) or x where bars start (rows)
    bars: tuple[Bar, ...]


def _describe(title: str, bars: Sequence[tuple[str, Decimal]]) -> str:
    if not bars:
        return f"{title}: nothing to show."
    top_label, top_value = max(bars, key=lambda bar: bar[1])
    total = sum((value for _, value in bars), Decimal(0))
    return (
        f"{title}: {len(bars)} bars, {dollars(total)} in all; the highest is {top_label} "
        f"at {dollars(top_value)}. The table beside the chart gives every figure."
    )


def _scale(value: Decimal, top: Decimal, span: float) -> float:
    if top <= 0 or value <= 0:
        return 0.0
    return round(float(value / top) * span, 1)


def columns(
    key: str,
    *,
    title: str,
    bars: Sequence[tuple[str, str, Decimal]],
    highlight: str = "",
) -> Chart:
    """Vertical bars side by side, e.g. one per month: bars are (label, short label, value)."""
    top = max((value for _, _, value in bars), default=Decimal(0))
    slot = WIDTH / max(len(bars), 1)
    span = COLUMNS_HEIGHT - COLUMN_TOP - COLUMN_BOTTOM
    baseline = COLUMNS_HEIGHT - COLUMN_BOTTOM
    drawn = []
    for index, (label, short_label, value) in enumerate(bars):
        height = _scale(value, top, span)
        x = round(index * slot + slot * 0.15, 1)
        centre = round(index * slot + slot / 2, 1)
        drawn.append(
            Bar(
                label=label,
                short_label=short_label,
                value=value,
                text=dollars(value),
                x=x,
                y=round(baseline - height, 1),
                width=round(slot * 0.7, 1),
                height=height,
                label_x=centre,
                label_y=round(baseline + 16, 1),
                value_x=centre,
                value_y=round(baseline - height - 6, 1),
                highlight=label == highlight,
            )
        )
    return Chart(
        key=key,
        title=title,
        description=_describe(title, [(label, value) for label, _, value in bars]),
        orientation="columns",
        width=WIDTH,
        height=COLUMNS_HEIGHT,
        baseline=baseline,
        bars=tuple(drawn),
    )


def rows(
    key: str,
    *,
    title: str,
    bars: Sequence[tuple[str, Decimal]],
    highlight: str = "",
) -> Chart:
    """Horizontal bars one under another, e.g. one per series: bars are (label, value)."""
    top = max((value for _, value in bars), default=Decimal(0))
    span = WIDTH - ROW_LABEL_WIDTH - ROW_VALUE_WIDTH
    drawn = []
    for index, (label, value) in enumerate(bars):
        y = index * (ROW_HEIGHT + ROW_GAP)
        length = _scale(value, top, span)
        middle = round(y + ROW_HEIGHT / 2 + 4, 1)  # +4: text sits on its baseline
        drawn.append(
            Bar(
                label=label,
                short_label=_short(label),
                value=value,
                text=dollars(value),
                x=ROW_LABEL_WIDTH,
                y=y,
                width=length,
                height=ROW_HEIGHT,
                label_x=ROW_LABEL_WIDTH - 8,
                label_y=middle,
                value_x=round(ROW_LABEL_WIDTH + length + 6, 1),
                value_y=middle,
                highlight=label == highlight,
            )
        )
    height = max(len(bars), 1) * (ROW_HEIGHT + ROW_GAP) - ROW_GAP
    return Chart(
        key=key,
        title=title,
        description=_describe(title, bars),
        orientation="rows",
        width=WIDTH,
        height=height,
        baseline=ROW_LABEL_WIDTH,
        bars=tuple(drawn),
    )


# --- Scores (0-100): grouped columns and lines over time --------------------------------

SCORE_TOP = 100.0
SCORE_LEFT = 30.0  # room for the 0 / 50 / 100 on the left
GROUPED_HEIGHT = 230.0
GROUPED_TOP = 20.0
GROUPED_BOTTOM = 26.0
LINES_HEIGHT = 190.0
LINES_TOP = 12.0
LINES_BOTTOM = 24.0
LINES_RIGHT = 12.0
GRID_VALUES = (0, 50, 100)


def _score_text(value: float | None, unit: str = "") -> str:
    return "–" if value is None else f"{round(value):d}{unit}"


@dataclass(frozen=True)
class ThresholdLine:
    """A dashed horizontal line at a score; its text is for the legend and the tooltip."""

    x1: float
    x2: float
    y: float
    text: str


@dataclass(frozen=True)
class GroupedBar:
    series: int  # which series (its colour: the class series-N)
    label: str  # in full, for the tooltip: "Face, OpenAI · Reference clip: 92"
    value: float | None
    text: str
    x: float
    y: float
    width: float
    height: float
    value_x: float
    value_y: float


@dataclass(frozen=True)
class BarGroup:
    label: str
    label_x: float
    bars: tuple[GroupedBar, ...]


@dataclass(frozen=True)
class GroupedChart:
    """Bars grouped side by side on a 0-100 scale: one group per measure (face, clothing,
    ...), one bar per series in each (a provider and a way of sending characters)."""

    key: str
    title: str
    description: str
    width: float
    height: float
    left: float
    baseline: float
    gridlines: tuple[tuple[float, str], ...]  # (y, the value written)
    groups: tuple[BarGroup, ...]
    legend: tuple[tuple[int, str], ...]  # (series, label)
    threshold: ThresholdLine | None


def _score_y(value: float, top: float, baseline: float) -> float:
    clamped = min(max(value, 0.0), SCORE_TOP)
    return round(baseline - clamped / SCORE_TOP * (baseline - top), 1)


def grouped_columns(
    key: str,
    *,
    title: str,
    series: Sequence[str],
    groups: Sequence[tuple[str, Sequence[float | None], str]],
    threshold: float | None = None,
    threshold_groups: int = 0,
) -> GroupedChart:
    """Groups of bars on a 0-100 scale. `groups` are (label, one value per series or None,
    unit written after each value, e.g. "%"). A threshold line spans the first
    `threshold_groups` groups (the ones measured against it)."""
    baseline = GROUPED_HEIGHT - GROUPED_BOTTOM
    slot = (WIDTH - SCORE_LEFT) / max(len(groups), 1)
    bar_width = round(slot * 0.8 / max(len(series), 1), 1)
    drawn_groups = []
    for g, (group_label, values, unit) in enumerate(groups):
        start = SCORE_LEFT + g * slot + slot * 0.1
        bars = []
        for s, (series_label, value) in enumerate(zip(series, values, strict=True)):
            x = round(start + s * bar_width, 1)
            y = baseline if value is None else _score_y(value, GROUPED_TOP, baseline)
            text = _score_text(value, unit)
            bars.append(
                GroupedBar(
                    series=s,
                    label=f"{group_label}, {series_label}: {text}",
                    value=value,
                    text=text,
                    x=x + 1,
                    y=y,
                    width=max(bar_width - 2, 1.0),
                    height=round(baseline - y, 1),
                    value_x=round(x + bar_width / 2, 1),
                    value_y=round(y - 5, 1),
                )
            )
        drawn_groups.append(
            BarGroup(group_label, round(SCORE_LEFT + g * slot + slot / 2, 1), tuple(bars))
        )
    line = None
    if threshold is not None and threshold_groups:
        line = ThresholdLine(
            x1=SCORE_LEFT,
            x2=round(SCORE_LEFT + threshold_groups * slot, 1),
            y=_score_y(threshold, GROUPED_TOP, baseline),
            text=f"threshold {round(threshold):d}",
        )
    parts = []
    for group_label, values, unit in groups:
        shown = [
            f"{label} {_score_text(value, unit)}"
            for label, value in zip(series, values, strict=True)
            if value is not None
        ]
        parts.append(f"{group_label}: {', '.join(shown) or 'nothing scored'}")
    description = f"{title}. " + "; ".join(parts) + ". The table gives every figure."
    return GroupedChart(
        key=key,
        title=title,
        description=description,
        width=WIDTH,
        height=GROUPED_HEIGHT,
        left=SCORE_LEFT,
        baseline=baseline,
        gridlines=tuple(
            (_score_y(value, GROUPED_TOP, baseline), str(value)) for value in GRID_VALUES
        ),
        groups=tuple(drawn_groups),
        legend=tuple(enumerate(series)),
        threshold=line,
    )


@dataclass(frozen=True)
class LineSeries:
    series: int  # its colour: the class series-N
    label: str
    segments: tuple[str, ...]  # SVG polyline points, one string per unbroken run
    dots: tuple[tuple[float, float], ...]  # values with no neighbour to join


@dataclass(frozen=True)
class LineChart:
    """Scores (0-100) over a take's seconds, one line per measure, gaps where not scored."""

    key: str
    title: str
    description: str
    width: float
    height: float
    left: float
    right: float
    baseline: float
    gridlines: tuple[tuple[float, str], ...]
    ticks: tuple[tuple[float, str], ...]  # (x, seconds written)
    lines: tuple[LineSeries, ...]
    threshold: ThresholdLine | None


def _tick_step(seconds: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60):
        if seconds / step <= 8:
            return step
    return 120


def lines(
    key: str,
    *,
    title: str,
    seconds: float,
    series: Sequence[tuple[str, Sequence[tuple[float, float | None]]]],
    threshold: float | None = None,
) -> LineChart:
    """One line per (label, [(second, value or None), ...]) over 0..`seconds`, on 0-100."""
    right = WIDTH - LINES_RIGHT
    baseline = LINES_HEIGHT - LINES_BOTTOM
    span = max(seconds, 0.1)

    def x_of(second: float) -> float:
        return round(SCORE_LEFT + min(max(second, 0.0), span) / span * (right - SCORE_LEFT), 1)

    drawn = []
    parts = []
    for index, (label, points) in enumerate(series):
        runs: list[list[tuple[float, float]]] = [[]]
        for second, value in points:
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((x_of(second), _score_y(value, LINES_TOP, baseline)))
        segments = tuple(" ".join(f"{x},{y}" for x, y in run) for run in runs if len(run) > 1)
        dots = tuple(run[0] for run in runs if len(run) == 1)
        drawn.append(LineSeries(index, label, segments, dots))
        scored = [(value, second) for second, value in points if value is not None]
        if scored:
            low, when = min(scored)
            parts.append(f"{label} lowest {round(low):d} at {when:.1f} s")
        else:
            parts.append(f"{label} not scored")
    step = _tick_step(span)
    ticks = []
    tick = 0.0
    while tick <= span + 1e-9:
        ticks.append((x_of(tick), f"{tick:g} s"))
        tick += step
    line = None
    if threshold is not None:
        line = ThresholdLine(
            x1=SCORE_LEFT,
            x2=right,
            y=_score_y(threshold, LINES_TOP, baseline),
            text=f"threshold {round(threshold):d}",
        )
    description = f"{title} over {span:.1f} s: " + "; ".join(parts) + "."
    if threshold is not None:
        description += f" The threshold is {round(threshold):d}."
    return LineChart(
        key=key,
        title=title,
        description=description,
        width=WIDTH,
        height=LINES_HEIGHT,
        left=SCORE_LEFT,
        right=right,
        baseline=baseline,
        gridlines=tuple(
            (_score_y(value, LINES_TOP, baseline), str(value)) for value in GRID_VALUES
        ),
        ticks=tuple(ticks),
        lines=tuple(drawn),
        threshold=line,
    )


# --- Counts stacked by kind: columns over time ------------------------------------------

STACKED_HEIGHT = 180.0
STACKED_TOP = 16.0
STACKED_BOTTOM = 22.0


@dataclass(frozen=True)
class Segment:
    """One kind's part of a column, e.g. the calls of an hour answered 4xx."""

    kind: str  # its colour: the class kind-<kind>
    label: str  # the tooltip, in full
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class StackedColumn:
    label: str
    short_label: str  # written under the column; empty to leave room for neighbours
    total: int
    label_x: float
    label_y: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class StackedChart:
    """Columns of whole counts, each split by kind (the kinds' order is the stacking order,
    bottom up), with a legend and the top of the scale written on the left."""

    key: str
    title: str
    description: str
    width: float
    height: float
    baseline: float
    top: int
    top_y: float
    columns: tuple[StackedColumn, ...]
    legend: tuple[tuple[str, str], ...]  # (kind, label)


def stacked_counts(
    key: str,
    *,
    title: str,
    columns: Sequence[tuple[str, str, Sequence[int]]],
    kinds: Sequence[tuple[str, str]],
    unit: str = "",
) -> StackedChart:
    """Columns of counts, e.g. an API token's calls per hour by status class: `columns` are
    (label, short label, one count per kind), `kinds` are (kind, label). `unit` names what
    is counted in the description ("calls")."""
    top = max((sum(counts) for _, _, counts in columns), default=0)
    baseline = STACKED_HEIGHT - STACKED_BOTTOM
    span = baseline - STACKED_TOP
    slot = WIDTH / max(len(columns), 1)
    drawn = []
    for index, (label, short_label, counts) in enumerate(columns):
        x = round(index * slot + slot * 0.12, 1)
        bottom = baseline
        segments = []
        for (kind, kind_label), count in zip(kinds, counts, strict=True):
            if not count:
                continue
            height = round(count / top * span, 1)
            bottom = round(bottom - height, 1)
            segments.append(
                Segment(
                    kind=kind,
                    label=f"{label}: {count} {kind_label}",
                    x=x,
                    y=bottom,
                    width=round(slot * 0.76, 1),
                    height=height,
                )
            )
        drawn.append(
            StackedColumn(
                label=label,
                short_label=short_label,
                total=sum(counts),
                label_x=round(index * slot + slot / 2, 1),
                label_y=round(baseline + 15, 1),
                segments=tuple(segments),
            )
        )
    totals = [sum(counts[k] for _, _, counts in columns) for k in range(len(kinds))]
    everything = sum(totals)
    noun = f" {unit}" if unit else ""
    if everything:
        parts = ", ".join(
            f"{total} {kind_label}" for (_, kind_label), total in zip(kinds, totals, strict=True)
        )
        busiest = max(columns, key=lambda column: sum(column[2]))
        description = (
            f"{title}: {everything}{noun} in all ({parts}); the most in {busiest[0]} "
            f"with {sum(busiest[2])}. The table gives every figure."
        )
    else:
        description = f"{title}: no{noun or ' counts'} at all."
    return StackedChart(
        key=key,
        title=title,
        description=description,
        width=WIDTH,
        height=STACKED_HEIGHT,
        baseline=baseline,
        top=top,
        top_y=STACKED_TOP,
        columns=tuple(drawn),
        legend=tuple(kinds),
    )
