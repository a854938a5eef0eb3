"""Applications of firms to products (with the consent they carry) and institutions' decisions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, StrictBool, field_validator, model_validator
from pydantic.config import JsonDict
from sqlmodel import AutoString, Field, SQLModel

from shared.enums import ApplicationStatus, DecisionOutcome, RejectionReason
from shared.errors import invalid_fields
from shared.schemas.matching import UnmetCriterion
from shared.types import (
    MAX_RATE_BP,
    MAX_TERM_MONTHS,
    MAX_YUAN,
    Flag,
    Id,
    PositiveYuan,
    RateBp,
    ShortText,
    TermMonths,
)


class ApplicationTerms(SQLModel):
    """What a firm asks for when it applies (the registry's Application table inherits it)."""

    requested_amount_yuan: PositiveYuan = Field(sa_type=sa.BigInteger)
    requested_term_months: TermMonths


class EligibilityStatus(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    # Matching could not be asked when the application came in; it was accepted all the same.
    UNKNOWN = "unknown"


# One unmet criterion as an answer shows it (the eligibility's example, the strict refusal's).
UNMET_EXAMPLE: dict[str, Any] = {
    "code": "min_export_usd",
    "message": "出口额需达 5,000,000 美元，当前 0 美元，差 5,000,000 美元",
    "required": 5_000_000,
    "actual": 0,
    "gap": 5_000_000,
    "actionable": True,
}


class ApplicationEligibility(BaseModel):
    """Matching's eligibility rules for the firm and product, evaluated at submission."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "eligible", "unmet": []},
                {
                    "status": "ineligible",
                    "unmet": [UNMET_EXAMPLE],
                },
                {"status": "unknown", "unmet": []},
            ]
        }
    )

    status: EligibilityStatus
    unmet: list[UnmetCriterion] = Field(
        default_factory=list, description="the criteria the firm failed (empty unless ineligible)"
    )


class ApplicationCreate(ApplicationTerms):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "firm_id": 42,
                    "product_id": 7,
                    "requested_amount_yuan": 2_000_000,
                    "requested_term_months": 12,
                    "consent_share_profile": True,
                    "strict": True,
                }
            ]
        },
    )

    firm_id: Id
    product_id: Id
    consent_share_profile: Flag = Field(
        description="the firm agrees to share its profile with the product's institution "
        "(must be true: no consent, no application)",
        schema_extra={"json_schema_extra": {"const": True}},
    )
    strict: StrictBool = Field(
        default=False,
        description="refuse (422 not_eligible, listing the unmet criteria) when the firm is "
        "not eligible for the product; an application is never refused because eligibility "
        "could not be checked",
    )

    @field_validator("consent_share_profile")
    @classmethod
    def _consent(cls, value: bool) -> bool:
        if not value:
            raise ValueError("consent_share_profile must be true to apply")
        return value


class ApplicationSubmission(ApplicationCreate):
    """An application as the gateway hands it to the registry: with the eligibility it found
    (None: not checked, stored as unknown)."""

    eligibility: ApplicationEligibility | None = None


class ApplicationPublic(ApplicationTerms):
    id: int
    firm_id: int | None
    product_id: int
    institution_id: int
    owner_principal_id: int
    status: ApplicationStatus
    consent_share_profile: bool
    consent_text_version: str
    consent_at: datetime
    consent_withdrawn_at: datetime | None
    town_code: str
    industry_section: str
    size_class: str
    is_first_loan: bool
    submitted_at: datetime
    decided_at: datetime | None
    withdrawn_at: datetime | None
    eligibility: ApplicationEligibility
    version: int


class DecisionBase(SQLModel):
    """An institution's decision on an application (the registry's Decision table inherits it)."""

    outcome: DecisionOutcome = Field(sa_type=AutoString(length=16))
    approved_amount_yuan: PositiveYuan | None = Field(default=None, sa_type=sa.BigInteger)
    rate_bp: RateBp | None = None
    term_months: TermMonths | None = None
    rejection_reason: RejectionReason | None = Field(default=None, sa_type=AutoString(length=32))
    note: ShortText | None = Field(default=None, max_length=500)


_NULL: JsonDict = {"type": "null"}
# Which fields go with which outcome, stated in the schema (the model validator enforces it) so
# that a client generated from it, or a fuzzer, does not send a body that is refused.
_ONE_OUTCOME: JsonDict = {
    "oneOf": [
        {
            "title": "an approval: amount, rate and term",
            "required": ["outcome", "approved_amount_yuan", "rate_bp", "term_months"],
            "properties": {
                "outcome": {"const": DecisionOutcome.APPROVED.value},
                "approved_amount_yuan": {
                    "type": "integer",
                    "exclusiveMinimum": 0,
                    "maximum": MAX_YUAN,
                },
                "rate_bp": {"type": "integer", "minimum": 0, "maximum": MAX_RATE_BP},
                "term_months": {"type": "integer", "minimum": 1, "maximum": MAX_TERM_MONTHS},
                "rejection_reason": _NULL,
            },
        },
        {
            "title": "a rejection: its reason",
            "required": ["outcome", "rejection_reason"],
            "properties": {
                "outcome": {"const": DecisionOutcome.REJECTED.value},
                "rejection_reason": {"type": "string", "enum": [r.value for r in RejectionReason]},
                "approved_amount_yuan": _NULL,
                "rate_bp": _NULL,
                "term_months": _NULL,
            },
        },
    ],
    "examples": [
        {
            "outcome": "approved",
            "approved_amount_yuan": 1_500_000,
            "rate_bp": 385,
            "term_months": 12,
        },
        {"outcome": "rejected", "rejection_reason": "insufficient_collateral", "note": "押品不足"},
    ],
}


class DecisionCreate(DecisionBase):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_OUTCOME)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _shape(self) -> DecisionCreate:
        terms = {
            "approved_amount_yuan": self.approved_amount_yuan,
            "rate_bp": self.rate_bp,
            "term_months": self.term_months,
        }
        problems: dict[str, str] = {}
        if self.outcome is DecisionOutcome.APPROVED:
            for name, value in terms.items():
                if value is None:
                    problems[name] = f"an approval needs {name}"
            if self.rejection_reason is not None:
                problems["rejection_reason"] = "rejection_reason is only for rejections"
        else:
            if self.rejection_reason is None:
                problems["rejection_reason"] = "a rejection needs rejection_reason"
            for name, value in terms.items():
                if value is not None:
                    problems[name] = f"a rejection carries no {name}"
        if problems:
            raise invalid_fields(type(self).__name__, problems, terms)
        return self


class DecisionPublic(DecisionBase):
    id: int
    application_id: int
    decided_by_principal_id: int
    decided_at: datetime
