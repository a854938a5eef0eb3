"""Hard eligibility rules of a product checked against firms, one at a time or all at once.

These are the ground-truth rules of the synthetic world: the criterion registry's
(shared/criteria/), applied to the generator's plain firm and product mappings. Both forms
below read the same entries and the same arithmetic, so a firm is eligible in the batch exactly
when the one-firm check finds nothing wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.criteria import CRITERIA, fails, firm_value, setting_number, shortfall, years_between

Bools = npt.NDArray[np.bool_]


def as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def years_established(firm: Mapping[str, Any], as_of: date) -> float:
    return years_between(as_date(firm["established_on"]), as_of)


def _fields(firm: Mapping[str, Any], size_class: str) -> dict[str, Any]:
    """The firm as the criteria read it: its own fields, dated, with its size class."""
    return {
        **firm,
        "established_on": as_date(firm["established_on"]),
        "size_class": str(size_class),
    }


def hard_rule_violations(
    firm: Mapping[str, Any], product: Mapping[str, Any], size_class: str, as_of: date
) -> list[str]:
    """Names of the product's eligibility fields the firm fails; empty when it is eligible."""
    values = _fields(firm, size_class)
    return [c.code for c in CRITERIA if fails(c, values, product.get(c.code), as_of)]


def eligibility_matrix(
    firms: Sequence[Mapping[str, Any]],
    products: Sequence[Mapping[str, Any]],
    size_classes: Sequence[str],
    as_of: date | None = None,
) -> Bools:
    """Eligible[i, j] for firm i and product j, vectorised over firms.

    With ``as_of`` None the age rules (those reading established_on) are left out, for callers
    that check them per date themselves.
    """
    rows = [_fields(f, s) for f, s in zip(firms, size_classes, strict=True)]
    criteria = [c for c in CRITERIA if as_of is not None or not c.reads_age]
    day = as_of or date.max
    columns = {c.code: np.array([firm_value(c, row, day) for row in rows]) for c in criteria}
    out = np.ones((len(rows), len(products)), dtype=np.bool_)
    for j, product in enumerate(products):
        ok = out[:, j]
        for criterion in criteria:
            setting = product.get(criterion.code)
            if criterion.is_list:
                if setting:
                    ok &= np.isin(columns[criterion.code], [str(v) for v in setting])
                continue
            required = setting_number(criterion, setting)
            if required is not None and len(rows):
                ok &= ~(shortfall(criterion, columns[criterion.code], required) > 0)
    return out


def age_settings(
    products: Sequence[Mapping[str, Any]],
) -> list[tuple[Any, npt.NDArray[np.float64]]]:
    """(criterion, each product's setting or NaN) for the rules that read a firm's age."""
    return [
        (
            c,
            np.array(
                [np.nan if (v := setting_number(c, p.get(c.code))) is None else v for p in products]
            ),
        )
        for c in CRITERIA
        if c.reads_age
    ]


def meets_age_rules(years: float, settings: Sequence[tuple[Any, npt.NDArray[np.float64]]]) -> Bools:
    """Per product: whether a firm ``years`` old meets its age rules (age_settings)."""
    ok = np.ones(len(settings[0][1]) if settings else 0, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        for criterion, values in settings:
            ok &= ~(shortfall(criterion, years, values) > 0)
    return ok
