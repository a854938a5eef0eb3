"""The next step of a criterion: the setting one notch easier, for "what if it were relaxed".

A bank previewing a product's reach asks, per rule it sets, how many more firms one notch less
would admit. One notch is:

- an amount (yuan, US dollars): the next round figure on the 1-2-5 ladder, down for a minimum
  (5,000,000 → 2,000,000; 3,000,000 → 2,000,000) and up for a maximum; a minimum of 1 or less
  is dropped;
- a count above 10 (employees): the 1-2-5 ladder too (50 → 20); a smaller count or a number
  of years: one less for a minimum (a minimum of 1 is dropped), one more for a maximum;
- a credit rating floor: one grade lower (a floor of C is dropped);
- a required status (a flag): not required;
- a list (towns, sectors, size classes): no restriction.

``None`` means the rule is dropped (no threshold, no flag; lists relax to ``[]``).
"""

from __future__ import annotations

import math
from typing import Any

from shared.criteria._model import Comparison, Criterion, Unit
from shared.enums import CreditRating

_LADDER = (1, 2, 5)


def _ladder_below(value: float) -> float | None:
    """The largest 1-2-5 figure strictly below ``value`` (None at or below 1)."""
    if value <= 1:
        return None
    exponent = math.floor(math.log10(value))
    for power in (exponent, exponent - 1):
        for mantissa in reversed(_LADDER):
            candidate = float(mantissa * 10**power)
            if candidate < value:
                return candidate
    return None  # pragma: no cover - one of the two decades always has one


def _ladder_above(value: float) -> float:
    """The smallest 1-2-5 figure strictly above ``value``."""
    exponent = max(0, math.floor(math.log10(value))) if value > 0 else 0
    for power in (exponent, exponent + 1):
        for mantissa in _LADDER:
            candidate = float(mantissa * 10**power)
            if candidate > value:
                return candidate
    return float(10 ** (exponent + 2))  # pragma: no cover


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def next_step(criterion: Criterion, setting: Any) -> Any:
    """The setting one notch easier than ``setting`` (which the product sets)."""
    compare = criterion.compare
    if compare is Comparison.ONE_OF:
        return []
    if compare is Comparison.REQUIRED:
        return False if isinstance(setting, bool) else None
    if compare is Comparison.RATING:
        grades = list(CreditRating)
        index = grades.index(CreditRating(setting))
        return None if index == len(grades) - 1 else grades[index + 1].value
    amount = criterion.unit in (Unit.YUAN, Unit.USD) or (
        criterion.unit is Unit.COUNT and setting > 10
    )
    if compare is Comparison.AT_LEAST:
        if amount:
            lower = _ladder_below(float(setting))
            return None if lower is None else _whole(lower)
        return None if setting <= 1 else _whole(setting - 1)
    # AT_MOST: a ceiling one notch higher.
    return _whole(_ladder_above(float(setting))) if amount else _whole(setting + 1)


def is_set(criterion: Criterion, setting: Any) -> bool:
    """Whether a product's ``setting`` restricts anyone at all."""
    if criterion.compare is Comparison.ONE_OF:
        return bool(setting)
    if criterion.compare is Comparison.REQUIRED:
        return bool(setting)
    return setting is not None
