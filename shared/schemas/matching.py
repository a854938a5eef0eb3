"""The matching service's contract: rank requests and ranked, explained answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from shared.schemas.firm import FirmFeatures
from shared.schemas.product import ProductFeatures
from shared.schemas.registers import VerifiedFields
from shared.types import PositiveYuan, TermMonths

Lang = Literal["zh", "en"]
MAX_PRODUCTS_PER_REQUEST = 20_000


class RankOptions(BaseModel):
    lang: Lang = "zh"
    limit: int = Field(default=20, ge=1, le=1_000, description="ranked products returned")
    near_miss_limit: int = Field(default=10, ge=0, le=1_000)
    max_unmet_for_near_miss: int = Field(default=2, ge=1, le=5)
    requested_amount_yuan: PositiveYuan | None = Field(
        default=None, description="defaults to the firm's stated need"
    )
    requested_term_months: TermMonths | None = None


class RankRequest(BaseModel):
    """A firm and the catalogue to rank for it.

    The catalogue is sent whole (``products``) or, once the service has seen it, by its
    ``catalogue_version`` alone; an unknown version without products answers 409.
    """

    firm: FirmFeatures
    verified: VerifiedFields
    firm_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    products: list[ProductFeatures] | None = Field(
        default=None, max_length=MAX_PRODUCTS_PER_REQUEST
    )
    catalogue_version: str | None = Field(
        default=None, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$"
    )
    options: RankOptions = Field(default_factory=RankOptions)


class Reason(BaseModel):
    """One readable factor behind a rank: from a rule the firm meets, or from the model."""

    code: str
    message: str
    source: Literal["rule", "model", "cost"]
    weight: float | None = Field(default=None, description="model contribution, if any")


class UnmetCriterion(BaseModel):
    """A rule the firm fails, with the gap quantified where it is a number."""

    code: str = Field(description="the product's eligibility field, e.g. min_export_usd")
    message: str
    required: float | str | list[str] | None = None
    actual: float | str | None = None
    gap: float | None = Field(default=None, description="how much is missing, in the unit")
    actionable: bool = Field(description="whether the firm can change it (not town or sector)")


class CostEstimate(BaseModel):
    """Annual cost of this product for the amount it would lend, after subsidy and fees."""

    amount_yuan: int
    term_months: int
    rate_bp: int
    annual_interest_yuan: int
    annual_subsidy_yuan: int
    annual_guarantee_fee_yuan: int
    annual_cost_yuan: int
    effective_rate_bp: int


class RankedProduct(BaseModel):
    product_id: int
    rank: int
    score: float
    approval_probability: float | None = Field(description="None under the rule-only prior")
    coverage: float = Field(description="share of the requested amount this product can lend")
    cost: CostEstimate
    reasons: list[Reason]


class NearMiss(BaseModel):
    product_id: int
    unmet: list[UnmetCriterion]
    cost: CostEstimate | None = None


class RankResponse(BaseModel):
    model_version: str
    is_prior: bool = Field(description="True while the rule-and-cost prior ranks (cold start)")
    degraded: bool = Field(default=False, description="set by the gateway on a fallback path")
    evaluated: int
    eligible: int
    ranked: list[RankedProduct]
    near_misses: list[NearMiss]


class TrainRequest(BaseModel):
    """An admin's "train a challenger now" (the gateway's body, forwarded as is to matching)."""

    model_config = ConfigDict(extra="forbid")

    auto_promote: StrictBool = Field(
        default=True, description="promote the challenger if it beats the champion"
    )


MAX_FIRMS_PER_SCAN_REQUEST = 5_000


class ScanFirm(BaseModel):
    """A firm in a proactive-matching scan: its id and its features."""

    id: int = Field(ge=1, le=2**63 - 1)
    features: FirmFeatures
    verified: VerifiedFields


class NewlyQualifiedRequest(BaseModel):
    """Which of these firms a product newly qualifies for: all that qualify for ``after`` when
    ``before`` is None (a listing), else those that qualify now and did not before (a change)."""

    before: ProductFeatures | None = None
    after: ProductFeatures
    firms: list[ScanFirm] = Field(max_length=MAX_FIRMS_PER_SCAN_REQUEST)


class NewlyQualifiedFirm(BaseModel):
    firm_id: int
    approval_probability: float | None = Field(description="None under the rule-only prior")
    cost: CostEstimate


class NewlyQualifiedResponse(BaseModel):
    model_version: str
    is_prior: bool
    firms: list[NewlyQualifiedFirm]


class EligibilityRequest(BaseModel):
    """One firm against one product: matching's rules only (no model, no cost)."""

    firm: FirmFeatures
    verified: VerifiedFields
    product: ProductFeatures
    lang: Lang = "zh"


class EligibilityAnswer(BaseModel):
    eligible: bool
    unmet: list[UnmetCriterion]
