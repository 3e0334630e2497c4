"""The cost page's charts (memories.charts): axes with ticks and units, dated time axis,
exact values on hover, legible labels, and a sentence when there is nothing to draw."""

from __future__ import annotations

import datetime
import re

from django.urls import reverse

from memories import charts, cost, tokens
from tests.factories import make_memories, make_memory

DAY = 86_400
MIDNIGHT = int(datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC).timestamp())


def test_value_ticks_step_by_one_two_or_five():
    assert [charts.nice_step(peak) for peak in (1, 4, 7, 12, 37, 480, 9_000)] == [
        1,
        1,
        2,
        5,
        10,
        100,
        2_000,
    ]


def test_tick_labels_are_short_enough_for_a_narrow_bar():
    assert [charts.compact(n) for n in (0, 250, 1_000, 2_500, 50_000, 1_000_000)] == [
        "0",
        "250",
        "1k",
        "2.5k",
        "50k",
        "1M",
    ]


def test_the_histogram_marks_where_each_range_starts_and_counts_users():
    buckets = [("0–99", 3), ("100–249", 0), ("250+", 12)]
    chart = charts.histogram_chart(buckets, (0, 100, 250))
    assert [tick.label for tick in chart.x_ticks] == ["0", "100", "250"]
    assert [tick.position for tick in chart.x_ticks] == sorted(t.position for t in chart.x_ticks)
    assert chart.x_ticks[0].position == chart.left
    assert [tick.label for tick in chart.y_ticks] == ["0", "5", "10", "15"]
    assert [bar.title for bar in chart.bars] == ["0–99 tokens: 3 users", "250+ tokens: 12 users"]
    assert chart.x_title == "Memory tokens per user" and chart.y_title == "Users"
    tallest = max(chart.bars, key=lambda bar: bar.h)
    assert tallest.y + tallest.h == chart.bottom  # bars stand on the x-axis
    assert tallest.h == round((chart.bottom - chart.top) * 12 / 15, 1)


def test_the_per_day_chart_labels_dates_and_today():
    days = [(MIDNIGHT - (89 - n) * DAY, 1 if n == 89 else 0) for n in range(90)]
    chart = charts.per_day_chart(days, span=90)
    assert chart.x_ticks[-1].label == "Nov 25"  # today is always labelled
    assert 5 <= len(chart.x_ticks) <= 7
    assert all(re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", tick.label) for tick in chart.x_ticks)
    assert [bar.title for bar in chart.bars] == ["2026-11-25: 1 memory"]
    assert chart.peak == 1 and [tick.label for tick in chart.y_ticks] == ["0", "1"]


def test_a_chart_with_nothing_to_draw_says_so():
    chart = charts.per_day_chart([(MIDNIGHT, 0)], span=90)
    assert chart.is_empty and not chart.x_ticks and not chart.y_ticks
    assert chart.empty_sentence == "No memory was created in the last 90 days: nothing to draw."


def test_labels_are_drawn_at_a_legible_size():
    assert charts.FONT_SIZE >= 12 and charts.WIDTH == 720  # the CSS caps the chart at 720 px


def test_the_cost_page_draws_axes_titles_and_hover_values(editor_client, agent):
    make_memory(agent, "ann", "Prefers concise answers.")
    make_memories(agent, "bob", count=3, days_old=2)
    tokens.recount_user(agent, "ann")
    html = editor_client.get(reverse("memories:cost", args=[agent.slug])).content.decode()
    assert ">Memory tokens per user</text>" in html and ">Users</text>" in html
    assert ">Day created (UTC)</text>" in html and ">Memories</text>" in html
    assert re.search(r": 3 memories</title>", html)  # bob's day, on hover
    assert " tokens: 1 user</title>" in html
    assert 'font-size="13"' in html
    today = datetime.datetime.now(datetime.UTC).date()
    assert f">{today:%b} {today.day}</text>" in html
    assert "nothing to draw" not in html


def test_the_cost_page_of_an_agent_without_data_says_there_is_nothing_to_draw(editor_client, agent):
    html = editor_client.get(reverse("memories:cost", args=[agent.slug])).content.decode()
    assert "No user&#x27;s tokens are counted yet, so there is nothing to draw." in html
    assert f"No memory was created in the last {cost.PER_DAY_DAYS} days: nothing to draw." in html
    assert "<svg" not in html
