"""Hard eligibility rules of a product checked against firms, one at a time or all at once.

Both forms read the same rule tables below, so a firm is eligible in the batch exactly when the
one-firm check finds nothing wrong. These are the ground-truth rules of the synthetic world; the
matching service keeps its own filter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.enums import CreditRating

Bools = npt.NDArray[np.bool_]

# product field → firm feature it bounds from below (or, for flags, must be true)
MINIMUM_RULES: Mapping[str, str] = {
    "min_years_established": "years",
    "min_revenue_yuan": "revenue",
    "min_employees": "employees",
    "min_export_usd": "export_usd",
    "min_patents": "patents",
}
FLAG_RULES: Mapping[str, str] = {
    "requires_high_tech": "high_tech",
    "requires_specialized_sme": "specialized",
    "requires_gov_procurement": "procurement",
    "requires_receivables": "receivables",
    "requires_green": "green",
    "requires_first_loan": "never_borrowed",
}
LIST_RULES: Mapping[str, str] = {
    "elig_town_codes": "town_code",
    "elig_industry_sections": "industry_section",
    "elig_size_classes": "size_class",
}


def as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def years_established(firm: Mapping[str, Any], as_of: date) -> float:
    return max(0.0, (as_of - as_date(firm["established_on"])).days / 365.25)


def _rank(rating: str | None) -> int:
    return 0 if rating is None else CreditRating(rating).rank  # unrated fails any floor


def firm_features(firm: Mapping[str, Any], size_class: str, as_of: date) -> dict[str, Any]:
    """The firm's values the rules look at, under the names the rule tables use."""
    return {
        "years": years_established(firm, as_of),
        "revenue": firm["annual_revenue_yuan"],
        "employees": firm["employees"],
        "export_usd": firm.get("export_revenue_usd", 0),
        "patents": firm.get("invention_patents", 0) + firm.get("utility_patents", 0),
        "high_tech": bool(firm.get("is_high_tech")),
        "specialized": bool(firm.get("is_specialized_sme")),
        "procurement": firm.get("gov_procurement_contracts_yuan", 0) > 0,
        "receivables": firm.get("core_enterprise_receivables_yuan", 0) > 0,
        "green": bool(firm.get("is_green_listed")),
        "never_borrowed": not firm.get("has_borrowed_before", True),
        "town_code": firm["town_code"],
        "industry_section": firm["industry_section"],
        "size_class": str(size_class),
        "rating_rank": _rank(firm.get("credit_rating")),
    }


def hard_rule_violations(
    firm: Mapping[str, Any], product: Mapping[str, Any], size_class: str, as_of: date
) -> list[str]:
    """Names of the product's eligibility fields the firm fails; empty when it is eligible."""
    values = firm_features(firm, size_class, as_of)
    failed = [
        rule
        for rule, feature in LIST_RULES.items()
        if product.get(rule) and values[feature] not in product[rule]
    ]
    failed += [
        rule
        for rule, feature in MINIMUM_RULES.items()
        if product.get(rule) is not None and values[feature] < product[rule]
    ]
    top = product.get("max_revenue_yuan")
    if top is not None and values["revenue"] > top:
        failed.append("max_revenue_yuan")
    failed += [
        rule for rule, feature in FLAG_RULES.items() if product.get(rule) and not values[feature]
    ]
    floor = product.get("min_credit_rating")
    if floor is not None and values["rating_rank"] < _rank(floor):
        failed.append("min_credit_rating")
    return failed


def eligibility_matrix(
    firms: Sequence[Mapping[str, Any]],
    products: Sequence[Mapping[str, Any]],
    size_classes: Sequence[str],
    as_of: date | None = None,
) -> Bools:
    """Eligible[i, j] for firm i and product j, vectorised over firms.

    With ``as_of`` None the age rule (min_years_established) is left out, for callers that
    check it per date themselves.
    """
    rows = [
        firm_features(f, s, as_of or date.max) for f, s in zip(firms, size_classes, strict=True)
    ]
    columns = {name: np.array([row[name] for row in rows]) for name in rows[0]} if rows else {}
    out = np.ones((len(rows), len(products)), dtype=np.bool_)
    for j, product in enumerate(products):
        ok = out[:, j]
        for rule, feature in LIST_RULES.items():
            if product.get(rule):
                ok &= np.isin(columns[feature], [str(v) for v in product[rule]])
        for rule, feature in MINIMUM_RULES.items():
            if product.get(rule) is not None and (as_of is not None or feature != "years"):
                ok &= columns[feature] >= product[rule]
        if product.get("max_revenue_yuan") is not None:
            ok &= columns["revenue"] <= product["max_revenue_yuan"]
        for rule, feature in FLAG_RULES.items():
            if product.get(rule):
                ok &= columns[feature]
        if product.get("min_credit_rating") is not None:
            ok &= columns["rating_rank"] >= _rank(product["min_credit_rating"])
    return out
