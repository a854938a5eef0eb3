"""Hard eligibility rules, evaluated for many (firm, product) pairs in one vectorised pass.

Each criterion is named by the product field that sets it (``min_export_usd``, …). For every
pair we know which criteria fail and, for numeric ones, by how much (the gap), which is what
near misses are made of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.matching.tables import FLAG_RULES, Bools, FirmTable, Floats, Ints, ProductTable

# (code, actionable): a firm can grow its revenue or get certified, not move town or sector.
CRITERIA: tuple[tuple[str, bool], ...] = (
    ("elig_town_codes", False),
    ("elig_industry_sections", False),
    ("elig_size_classes", False),
    ("min_years_established", True),
    ("min_revenue_yuan", True),
    ("max_revenue_yuan", False),
    ("min_employees", True),
    ("min_export_usd", True),
    ("min_patents", True),
    *((rule, True) for rule in FLAG_RULES),
    ("min_credit_rating", True),
)
CRITERION_CODES: tuple[str, ...] = tuple(code for code, _ in CRITERIA)
ACTIONABLE: Bools = np.array([actionable for _, actionable in CRITERIA], dtype=np.bool_)
CRITERION_INDEX = {code: i for i, code in enumerate(CRITERION_CODES)}


@dataclass(frozen=True)
class PairEligibility:
    """Results for k pairs: ``failed[k, c]`` and ``gap[k, c]`` (NaN where not numeric)."""

    failed: Bools
    gap: Floats

    @property
    def unmet_count(self) -> Ints:
        counts: Ints = np.count_nonzero(self.failed, axis=1).astype(np.int64)
        return counts

    @property
    def eligible(self) -> Bools:
        passed: Bools = np.logical_not(np.any(self.failed, axis=1))
        return passed


def _shortfall(actual: Floats, required: Floats) -> tuple[Bools, Floats]:
    # NaN (no threshold) compares False, so an unset rule never fails.
    with np.errstate(invalid="ignore"):
        fails: Bools = np.less(actual, required)
    return fails, np.where(fails, required - actual, np.nan)


def evaluate_pairs(
    firms: FirmTable, firm_idx: Ints, products: ProductTable, product_idx: Ints
) -> PairEligibility:
    """Evaluate pair k = (firms[firm_idx[k]], products[product_idx[k]]) for every k."""
    k = len(firm_idx)
    failed = np.zeros((k, len(CRITERIA)), dtype=np.bool_)
    gap = np.full((k, len(CRITERIA)), np.nan)
    f, p = firm_idx, product_idx

    failed[:, 0] = ~products.town_allowed[p, firms.town[f]]
    failed[:, 1] = ~products.section_allowed[p, firms.section[f]]
    failed[:, 2] = ~products.size_allowed[p, firms.size[f]]
    minimums = (
        (3, firms.years, products.min_years),
        (4, firms.revenue, products.min_revenue),
        (6, firms.employees, products.min_employees),
        (7, firms.export_usd, products.min_export_usd),
        (8, firms.patents, products.min_patents),
    )
    for column, actual, required in minimums:
        failed[:, column], gap[:, column] = _shortfall(actual[f], required[p])
    with np.errstate(invalid="ignore"):
        over = firms.revenue[f] > products.max_revenue[p]
    failed[:, 5] = over
    gap[:, 5] = np.where(over, firms.revenue[f] - products.max_revenue[p], np.nan)
    first_flag = CRITERION_INDEX[FLAG_RULES[0]]
    failed[:, first_flag : first_flag + len(FLAG_RULES)] = products.requires[p] & ~firms.has[f]
    rating = CRITERION_INDEX["min_credit_rating"]
    failed[:, rating], gap[:, rating] = _shortfall(
        firms.rating_rank[f], products.min_rating_rank[p]
    )
    return PairEligibility(failed=failed, gap=gap)


def evaluate_firm(firms: FirmTable, i: int, products: ProductTable) -> PairEligibility:
    """Firm i against every product."""
    return evaluate_pairs(
        firms, np.full(products.n, i, dtype=np.int64), products, np.arange(products.n)
    )
