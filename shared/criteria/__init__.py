"""The eligibility criterion registry: every rule a product may set, declared once.

An entry says which product field sets the rule, which firm fields it reads and how, how the
two compare, the unit its values are shown in, whether a firm can act on a failure, its names
and its reason and near-miss wording in Chinese and English, and the name (if any) under which
officials may change it in the policy what-if. Product validation and OpenAPI descriptions
(shared/schemas/product.py), vectorised eligibility, reasons and near misses (matching), the
what-if request (shared/schemas/policy.py), the dashboard's what-if panel and the synthetic
world's ground truth (registry seed) all read these entries; none keeps a list of its own.

Three private modules behind this public surface: ``_model`` (what a criterion is),
``_registry`` (the criteria) and ``_arithmetic`` (comparisons for one firm or numpy columns).
"""

from shared.criteria._arithmetic import (
    combine,
    fails,
    field_number,
    firm_value,
    rating_rank,
    setting_number,
    shortfall,
    years_between,
)
from shared.criteria._model import Comparison, Criterion, Reading, Unit
from shared.criteria._registry import (
    CRITERIA,
    CRITERIA_BY_CODE,
    CRITERION_CODES,
    RANGE_PAIRS,
    WHAT_IF,
)
from shared.criteria._steps import is_set, next_step

__all__ = [
    "CRITERIA",
    "CRITERIA_BY_CODE",
    "CRITERION_CODES",
    "RANGE_PAIRS",
    "WHAT_IF",
    "Comparison",
    "Criterion",
    "Reading",
    "Unit",
    "combine",
    "fails",
    "field_number",
    "firm_value",
    "is_set",
    "next_step",
    "rating_rank",
    "setting_number",
    "shortfall",
    "years_between",
]
