"""Bar charts as geometry for an inline SVG: axes, ticks, units and hover titles are decided
here, so templates only draw what they are given (no chart library, no script)."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

WIDTH = 720  # the SVG is never drawn wider than this, so 1 unit is at most 1 pixel
FONT_SIZE = 13  # tick labels; at most 10% smaller on an 800 px wide window
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 44  # room for the y ticks and the x labels and title
DAY = 86_400


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    title: str  # shown on hover: the bar's exact value with its unit


@dataclass(frozen=True)
class Tick:
    position: float  # y of a value tick, x of a category or date tick
    label: str


@dataclass
class BarChart:
    width: int
    height: int
    label: str  # what the chart shows, for screen readers
    x_title: str
    y_title: str
    empty_sentence: str
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    peak: int = 0  # the largest value drawn
    font_size: int = FONT_SIZE
    left: int = LEFT
    top: int = TOP

    @property
    def is_empty(self) -> bool:
        return not self.bars

    @property
    def bottom(self) -> int:
        return self.height - BOTTOM

    @property
    def right(self) -> int:
        return self.width - RIGHT

    @property
    def x_title_y(self) -> int:
        return self.height - 6

    @property
    def x_label_y(self) -> int:
        return self.bottom + self.font_size + 6

    @property
    def middle_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def middle_y(self) -> float:
        return (self.top + self.bottom) / 2


def nice_step(peak: int, most_ticks: int = 5) -> int:
    """The smallest of 1, 2, 5 × 10ⁿ that marks 0..peak with at most `most_ticks` steps."""
    if peak <= 0:
        return 1
    magnitude = 10 ** max(0, math.floor(math.log10(peak / most_ticks)))
    for multiple in (1, 2, 5, 10):
        step = multiple * magnitude
        if math.ceil(peak / step) <= most_ticks:
            return step
    return 10 * magnitude


def compact(number: int) -> str:
    """A tick label that fits under a narrow bar: 2500 is "2.5k", 1000000 is "1M"."""
    if number >= 1_000_000:
        return f"{number / 1_000_000:g}M"
    if number >= 1_000:
        return f"{number / 1_000:g}k"
    return str(number)


def plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _bars_and_scale(
    chart: BarChart, values: list[int], units: tuple[str, str], labels: list[str]
) -> list[float]:
    """Fill the chart's bars and value ticks; return the centre of each bar's slot."""
    peak = chart.peak = max(values, default=0)
    if peak == 0:
        return []
    step = nice_step(peak)
    top_value = math.ceil(peak / step) * step
    plot_height = chart.bottom - chart.top
    slot = (chart.right - chart.left) / len(values)
    gap = min(4.0, slot * 0.2)
    centres = []
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = plot_height * value / top_value
        x = chart.left + index * slot + gap / 2
        centres.append(round(x + (slot - gap) / 2, 1))
        if value:
            chart.bars.append(
                Bar(
                    round(x, 1),
                    round(chart.bottom - h, 1),
                    round(slot - gap, 1),
                    round(h, 1),
                    f"{label}: {plural(value, *units)}",
                )
            )
    chart.y_ticks = [
        Tick(round(chart.bottom - plot_height * v / top_value, 1), compact(v))
        for v in range(0, top_value + 1, step)
    ]
    return centres


def histogram_chart(buckets: list[tuple[str, int]], edges: tuple[int, ...]) -> BarChart:
    """Users per range of memory tokens; ticks mark where each range starts (`edges`)."""
    chart = BarChart(
        width=WIDTH,
        height=240,
        label="Histogram: number of users per range of memory tokens",
        x_title="Memory tokens per user",
        y_title="Users",
        empty_sentence="No user's tokens are counted yet, so there is nothing to draw.",
    )
    titles = [f"{label} tokens" for label, _ in buckets]
    centres = _bars_and_scale(chart, [n for _, n in buckets], ("user", "users"), titles)
    if not centres:
        return chart
    half_slot = (chart.right - chart.left) / len(buckets) / 2
    chart.x_ticks = [
        Tick(round(centre - half_slot, 1), compact(edge))
        for centre, edge in zip(centres, edges, strict=True)
    ]
    return chart


def per_day_chart(days: list[tuple[int, int]], *, span: int) -> BarChart:
    """Memories created per day (epoch-second midnights, UTC), dated ticks about every 2 weeks."""
    chart = BarChart(
        width=WIDTH,
        height=220,
        label=f"Memories created per day over the last {span} days",
        x_title="Day created (UTC)",
        y_title="Memories",
        empty_sentence=f"No memory was created in the last {span} days: nothing to draw.",
    )
    dates = [datetime.datetime.fromtimestamp(day, datetime.UTC).date() for day, _ in days]
    labels = [date.isoformat() for date in dates]
    centres = _bars_and_scale(chart, [n for _, n in days], ("memory", "memories"), labels)
    if not centres:
        return chart
    every = max(1, math.ceil(len(dates) / 6))
    # Ticks counted back from the last day, so today is always labelled.
    chart.x_ticks = [
        Tick(centres[index], dates[index].strftime("%b %-d"))
        for index in range(len(dates) - 1, -1, -every)
    ][::-1]
    return chart
