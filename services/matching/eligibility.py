"""Hard eligibility rules, evaluated for many (firm, product) pairs in one vectorised pass.

The rules are the entries of the criterion registry (shared/criteria/), each named by the
product field that sets it (``min_export_usd``, …). For every pair we know which criteria fail
and, for numeric ones, by how much (the gap), which is what near misses are made of. The loop
runs over criteria, each a whole column of pairs at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.matching.tables import Bools, FirmTable, Floats, Ints, ProductTable
from shared.criteria import CRITERIA as REGISTRY
from shared.criteria import CRITERION_CODES, shortfall

# (code, actionable) in registry order: a firm can grow its revenue or get certified, not move
# town or sector, nor get younger.
CRITERIA: tuple[tuple[str, bool], ...] = tuple((c.code, c.actionable) for c in REGISTRY)
ACTIONABLE: Bools = np.array([c.actionable for c in REGISTRY], dtype=np.bool_)
CRITERION_INDEX = {code: i for i, code in enumerate(CRITERION_CODES)}

__all__ = [
    "ACTIONABLE",
    "CRITERIA",
    "CRITERION_CODES",
    "CRITERION_INDEX",
    "PairEligibility",
    "evaluate_firm",
    "evaluate_pairs",
]


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


def evaluate_pairs(
    firms: FirmTable, firm_idx: Ints, products: ProductTable, product_idx: Ints
) -> PairEligibility:
    """Evaluate pair k = (firms[firm_idx[k]], products[product_idx[k]]) for every k."""
    k = len(firm_idx)
    failed = np.zeros((k, len(REGISTRY)), dtype=np.bool_)
    gap = np.full((k, len(REGISTRY)), np.nan)
    f, p = firm_idx, product_idx
    for c, criterion in enumerate(REGISTRY):
        actual = firms.values[f, c]
        if criterion.is_list:
            failed[:, c] = ~products.allowed[criterion.code][p, actual.astype(np.int64)]
            continue
        # NaN (not set) compares False, so a rule the product does not set never fails.
        with np.errstate(invalid="ignore"):
            short = shortfall(criterion, actual, products.settings[p, c])
            fails = short > 0
        failed[:, c] = fails
        if criterion.is_numeric:
            gap[:, c] = np.where(fails, short, np.nan)
    return PairEligibility(failed=failed, gap=gap)


def evaluate_firm(firms: FirmTable, i: int, products: ProductTable) -> PairEligibility:
    """Firm i against every product."""
    return evaluate_pairs(
        firms, np.full(products.n, i, dtype=np.int64), products, np.arange(products.n)
    )
