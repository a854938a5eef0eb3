"""A firm's age by the calendar, as banks read "established at least N years"."""

from __future__ import annotations

from datetime import date

import pytest

from shared.criteria import years_between


@pytest.mark.parametrize(
    ("founded", "on", "age"),
    [
        (date(2024, 12, 6), date(2026, 12, 6), 2.0),  # the second anniversary: two years
        (date(2021, 12, 6), date(2026, 12, 6), 5.0),  # two 29 Februaries in between
        (date(2024, 2, 29), date(2025, 2, 28), 1.0),  # a leap-day firm in a common year
        (date(2024, 2, 29), date(2028, 2, 29), 4.0),
        (date(2020, 1, 1), date(2020, 7, 2), 183 / 366),  # half of a leap year
        (date(2026, 12, 7), date(2026, 12, 6), 0.0),  # founded later: never negative
    ],
)
def test_age_is_whole_on_each_anniversary(founded: date, on: date, age: float) -> None:
    assert years_between(founded, on) == pytest.approx(age, abs=1e-12)


def test_the_day_before_an_anniversary_is_short_of_it() -> None:
    assert 1.99 < years_between(date(2024, 12, 6), date(2026, 12, 5)) < 2.0
    assert 4.99 < years_between(date(2021, 12, 7), date(2026, 12, 6)) < 5.0
