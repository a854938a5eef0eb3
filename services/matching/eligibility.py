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
# shortfall() is (actual − setting) for an at-most criterion and (setting − actual) for the
# others, so over all columns at once it is (actual − setting) × this sign, read off shortfall
# itself rather than restated. List criteria are checked by membership instead.
_SIGN: Floats = np.array(
    [0.0 if c.is_list else float(shortfall(c, 1.0, 0.0)) for c in REGISTRY], dtype=np.float64
)
_LISTS: tuple[tuple[int, str], ...] = tuple(
    (i, c.code) for i, c in enumerate(REGISTRY) if c.is_list
)
_NOT_NUMERIC = np.array([i for i, c in enumerate(REGISTRY) if not c.is_numeric], dtype=np.int64)

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
    actual = firms.values[firm_idx]  # k × criteria, gathered once
    short = actual - products.settings[product_idx]
    short *= _SIGN
    # NaN (not set) compares False, so a rule the product does not set never fails.
    with np.errstate(invalid="ignore"):
        failed: Bools = short > 0
    gap = short  # in place: the shortfall where a criterion fails, else NaN
    np.copyto(gap, np.nan, where=~failed)
    gap[:, _NOT_NUMERIC] = np.nan  # flags and lists fail without a gap
    for c, code in _LISTS:
        failed[:, c] = ~products.allowed[code][product_idx, actual[:, c].astype(np.int64)]
    if products.verified_only.any():
        # A declared value does not meet a rule the product accepts only from a register.
        failed |= products.verified_only[product_idx] & ~firms.verified[firm_idx]
    return PairEligibility(failed=failed, gap=gap)


def evaluate_firm(firms: FirmTable, i: int, products: ProductTable) -> PairEligibility:
    """Firm i against every product."""
    return evaluate_pairs(
        firms, np.full(products.n, i, dtype=np.int64), products, np.arange(products.n)
    )
