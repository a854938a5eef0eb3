"""Deadlines in working days by the State Council's holiday calendar (法定节假日与调休)."""

from __future__ import annotations

from datetime import date

from services.registry.stats import deadline_offsets
from services.registry.stats.workdays import add_workdays, covered_years, workdays_between


def test_national_day_week_is_off_and_its_swapped_weekend_day_is_worked() -> None:
    # 2026: 1–7 October off, and 25 September (Mid-Autumn); Saturday 10 October (调休) worked.
    days = [d.item() for d in workdays_between(date(2026, 9, 24), date(2026, 10, 11))]
    assert days == [
        date(2026, 9, 24),
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
    ]
    # Thursday 24 September + 5 working days: 9 October (Monday–Friday would say 1 October).
    assert deadline_offsets([date(2026, 9, 24)], 5) == [date(2026, 10, 9)]


def test_spring_festival_pushes_deadlines_past_the_holiday() -> None:
    # 2026 Spring Festival: 15–23 February off; Saturday 14 and Saturday 28 February worked.
    assert add_workdays([date(2026, 2, 12)], 3) == [date(2026, 2, 24)]  # 13, 14 (Sat), 24


def test_a_day_off_rolls_forward_first_like_busday_offset() -> None:
    # New Year's Day 2026 (Thursday) is off, and so is Friday 2 January; Sunday 4 January is
    # worked (调休): a lead of 1 January rolls to the 4th, and one working day on is the 5th.
    assert deadline_offsets([date(2026, 1, 1), date(2026, 2, 1)], 1) == [
        date(2026, 1, 5),
        date(2026, 2, 3),
    ]


def test_past_the_published_years_it_falls_back_to_monday_to_friday() -> None:
    first, last = covered_years()
    assert first <= 2004
    assert last >= 2026
    beyond = date(last + 1, 3, 5)
    assert beyond.weekday() < 5
    # Five weekdays on, across a weekend, with no holiday known.
    expected = add_workdays([beyond], 5)[0]
    assert (expected - beyond).days == 7
    assert add_workdays([], 5) == []
