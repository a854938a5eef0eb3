"""Criterion arithmetic in plain operators, so the same functions serve one firm (numbers) and
many at once (numpy columns)."""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from shared.criteria._model import Comparison, Criterion, Reading
from shared.enums import CreditRating


def _anniversary(start: date, year: int) -> date:
    # A firm founded on 29 February has its anniversary on the 28th in a common year.
    return (
        start.replace(year=year)
        if (start.month, start.day) != (2, 29)
        else date(year, 2, 29 if calendar.isleap(year) else 28)
    )


def years_between(start: date, as_of: date) -> float:
    """A firm's age in years on ``as_of``, by the calendar: whole on each anniversary (so "at
    least 2 years" holds on the second one, as a bank reads it), and in between the share of
    the current anniversary year that has passed. Never negative."""
    if as_of <= start:
        return 0.0
    years = as_of.year - start.year
    if _anniversary(start, start.year + years) > as_of:
        years -= 1
    last = _anniversary(start, start.year + years)
    following = _anniversary(start, start.year + years + 1)
    return years + (as_of - last).days / (following - last).days


def rating_rank(rating: CreditRating | str | None) -> int:
    """0 for unrated (fails any rating floor), 1 (C) … 7 (AAA)."""
    return 0 if rating is None else CreditRating(rating).rank


def field_number(field: str, value: Any, as_of: date) -> float:
    """A firm field's value as a number a criterion can compare: a date becomes the years
    since (on ``as_of``), a credit rating its rank, a flag 0 or 1."""
    if isinstance(value, date):
        return years_between(value, as_of)
    if field == "credit_rating":
        return float(rating_rank(value))
    return float(value or 0)


def combine(criterion: Criterion, values: Sequence[Any]) -> Any:
    """The firm's value for ``criterion`` from its fields' values (numbers or columns)."""
    if criterion.reading is Reading.SUM:
        total = values[0]
        for value in values[1:]:
            total = total + value
        return total
    if criterion.reading is Reading.HAS:
        return values[0] > 0
    if criterion.reading is Reading.LACKS:
        return values[0] == 0
    return values[0]


def setting_number(criterion: Criterion, setting: Any) -> float | None:
    """A product's setting of a non-list criterion as the number firm values compare with;
    None where the product does not set it."""
    if setting is None or setting is False:
        return None
    if criterion.compare is Comparison.REQUIRED:
        return 1.0  # a firm that holds the status has the value 1
    if criterion.compare is Comparison.RATING:
        return float(rating_rank(setting))
    return float(setting)


def shortfall(criterion: Criterion, actual: Any, required: Any) -> Any:
    """How far the firm's value is on the failing side of the setting: > 0 fails, ≤ 0 meets.

    Numbers or numpy columns alike; a NaN setting (not set) gives NaN, which fails nothing.
    """
    if criterion.compare is Comparison.AT_MOST:
        return actual - required
    return required - actual


def firm_value(criterion: Criterion, firm: Mapping[str, Any], as_of: date) -> Any:
    """One firm's value for ``criterion``: a number, or the code a list criterion checks."""
    if criterion.is_list:
        return str(firm[criterion.firm_fields[0]])
    numbers = [field_number(f, firm.get(f), as_of) for f in criterion.firm_fields]
    return float(combine(criterion, numbers))


def fails(criterion: Criterion, firm: Mapping[str, Any], setting: Any, as_of: date) -> bool:
    """Whether one firm (its fields as a mapping) fails a product's ``setting``."""
    if criterion.is_list:
        return bool(setting) and firm_value(criterion, firm, as_of) not in [str(s) for s in setting]
    required = setting_number(criterion, setting)
    if required is None:
        return False
    return bool(shortfall(criterion, firm_value(criterion, firm, as_of), required) > 0)
