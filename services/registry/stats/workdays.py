"""Working days as the State Council's holiday calendar has them (法定节假日与调休).

The calendar comes from the ``chinese-calendar`` package, which carries each year's official
arrangement: public holidays are days off, and the weekend days swapped for them (调休) are
working days. It covers the years the State Council has published (2004 to 2026 in the pinned
version; each release adds the next year once announced, usually in November). A day outside
that range falls back to Monday–Friday, so a deadline in an unpublished year is computed as it
was before the calendar was known; upgrading the package brings the new year in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from functools import cache

import chinese_calendar
import numpy as np
import numpy.typing as npt

Days = npt.NDArray[np.datetime64]


@cache
def covered_years() -> tuple[int, int]:
    """The first and last year the installed calendar knows."""
    years = sorted({day.year for day in chinese_calendar.holidays})
    return years[0], years[-1]


@cache
def _known_workdays() -> Days:
    first, last = covered_years()
    days = chinese_calendar.get_workdays(date(first, 1, 1), date(last, 12, 31))
    return np.array(days, dtype="datetime64[D]")


def _weekdays(start: date, end: date) -> Days:
    """Monday–Friday from ``start`` to ``end`` inclusive (the fallback outside the calendar)."""
    span = np.arange(
        np.datetime64(start, "D"),
        np.datetime64(end + timedelta(days=1), "D"),
        dtype="datetime64[D]",
    )
    return span[np.is_busday(span)]


def workdays_between(start: date, end: date) -> Days:
    """Every working day from ``start`` to ``end`` inclusive, sorted."""
    first, last = covered_years()
    known_start, known_end = date(first, 1, 1), date(last, 12, 31)
    parts = []
    if start < known_start:
        parts.append(_weekdays(start, min(end, known_start - timedelta(days=1))))
    if end >= known_start and start <= known_end:
        known = _known_workdays()
        lo = np.datetime64(max(start, known_start), "D")
        hi = np.datetime64(min(end, known_end), "D")
        parts.append(known[(known >= lo) & (known <= hi)])
    if end > known_end:
        parts.append(_weekdays(max(start, known_end + timedelta(days=1)), end))
    return np.concatenate(parts) if parts else np.array([], dtype="datetime64[D]")


def add_workdays(days: Sequence[date], count: int) -> list[date]:
    """For each day: the ``count``-th working day after it (a day off first rolls forward to
    the next working day, as numpy's busday_offset with roll="forward" does)."""
    if not days:
        return []
    return [d.astype(date) for d in offset_workdays(np.array(days, dtype="datetime64[D]"), count)]


def offset_workdays(days: Days, count: int) -> Days:
    """``add_workdays`` over an array of days, vectorised (the league table's deadlines)."""
    if not len(days):
        return days
    start, end = days.min().astype(date), days.max().astype(date)
    # Enough room for the longest holiday (Spring Festival, 8–9 days) around each offset.
    calendar = workdays_between(start, end + timedelta(days=2 * count + 30))
    first = np.searchsorted(calendar, days, side="left")  # the day itself, or the next working day
    result: Days = calendar[first + count]
    return result
