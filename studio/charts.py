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
