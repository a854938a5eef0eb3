"""A firm's ranked products and near misses (GET /v1/firms/{id}/matches)."""

from __future__ import annotations

from typing import Literal

from finmatch_client.models._base import Answer


class Reason(Answer):
    """One readable factor behind a rank: from a rule the firm meets, or from the model."""

    code: str
    message: str
    source: Literal["rule", "model", "cost"]
    weight: float | None = None


class UnmetCriterion(Answer):
    """A rule the firm fails, with the gap quantified where it is a number."""

    code: str
    message: str
    required: float | str | list[str] | None = None
    actual: float | str | None = None
    gap: float | None = None
    actionable: bool


class CostEstimate(Answer):
    """Annual cost of this product for the amount it would lend, after subsidy and fees."""

    amount_yuan: int
    term_months: int
    rate_bp: int
    annual_interest_yuan: int
    annual_subsidy_yuan: int
    annual_guarantee_fee_yuan: int
    annual_cost_yuan: int
    effective_rate_bp: int


class ProductSummary(Answer):
    name: str
    category: str
    institution_id: int


class MatchedProduct(Answer):
    product_id: int
    rank: int
    score: float
    approval_probability: float | None
    coverage: float
    cost: CostEstimate
    reasons: list[Reason]
    product: ProductSummary


class NearMissProduct(Answer):
    """A product the firm misses, with what it lacks."""

    product_id: int
    unmet: list[UnmetCriterion]
    cost: CostEstimate | None = None
    product: ProductSummary


class MatchesResponse(Answer):
    """``degraded``: matching could not answer; ``stale``: this is the last answer held for
    the firm (``stale_age_seconds`` old)."""

    firm_id: int
    model_version: str
    is_prior: bool
    degraded: bool
    degraded_reason: str | None = None
    stale: bool = False
    stale_age_seconds: int | None = None
    catalogue_version: str
    evaluated: int
    eligible: int
    ranked: list[MatchedProduct]
    near_misses: list[NearMissProduct]
