"""An institution's past decisions, imported to train the approval model (never live records).

One NDJSON line is one past application and its decision: the firm's features as they were
then, the terms asked, when it was submitted and decided, and the outcome. The rules that need
no database (dates in the past and in order, the decision's shape) live here; the product's
ownership and bounds are the registry's (services/registry/history.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, ConfigDict, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlmodel import Field

from shared.china_date import china_date_of
from shared.errors import invalid_fields
from shared.schemas.application import ApplicationTerms, DecisionCreate
from shared.schemas.firm import FirmAttributes
from shared.types import Id
from shared.vocab.credit_code import normalize_credit_code


def _iso_datetime(value: Any) -> Any:
    # Without this, pydantic would read a number as seconds since 1970: a JSON body gives text.
    if isinstance(value, str | datetime):
        return value
    raise PydanticCustomError(
        "datetime_type", "Input should be an ISO 8601 date-time with its UTC offset"
    )


PastTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]


class HistoryFirm(FirmAttributes):
    """The firm's features when it applied: the profile's matching attributes. No name and no
    free text (training reads neither); the credit code only to be stored as a keyed hash."""

    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    credit_code: str | None = Field(
        default=None,
        max_length=40,
        description="统一社会信用代码, optional: stored only as a keyed hash (HMAC-SHA256), "
        "which groups one firm's past applications; never in clear",
    )

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, value: str | None) -> str | None:
        return None if value is None else normalize_credit_code(value)


_EXAMPLE: dict[str, Any] = {
    "product_id": 7,
    "firm": {
        "credit_code": "914419001E4B4DTRCN",
        "town_code": "441900116",
        "industry_section": "C",
        "industry_division": 39,
        "established_on": "2015-03-01",
        "employees": 45,
        "annual_revenue_yuan": 18_000_000,
        "total_assets_yuan": 12_000_000,
        "invention_patents": 2,
        "has_borrowed_before": True,
        "credit_rating": "A",
    },
    "requested_amount_yuan": 2_000_000,
    "requested_term_months": 12,
    "submitted_at": "2025-06-03T09:30:00+08:00",
    "decided_at": "2025-06-10T16:00:00+08:00",
    "decision": {
        "outcome": "approved",
        "approved_amount_yuan": 1_500_000,
        "rate_bp": 395,
        "term_months": 12,
    },
}


class HistoryLine(ApplicationTerms):
    """One line of ``POST /v1/decisions/history``: a past application and its decision.
    An institution holds each once: a line with the same values as one it already imported
    (any import_id, or earlier in the file) answers ``duplicate``, not written twice."""

    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                _EXAMPLE,
                _EXAMPLE
                | {"decision": {"outcome": "rejected", "rejection_reason": "insufficient_revenue"}},
            ]
        },
    )

    product_id: Id = Field(description="one of the institution's own products")
    firm: HistoryFirm
    submitted_at: PastTime = Field(description="when the firm applied, with its UTC offset")
    decided_at: PastTime = Field(
        description="when the institution decided; not before submitted_at"
    )
    decision: DecisionCreate

    @field_validator("submitted_at", "decided_at")
    @classmethod
    def _past(cls, value: datetime) -> datetime:
        try:
            at = value.astimezone(UTC)
        except OverflowError as exc:  # 9999-12-31T23:00-12:00 is past datetime.max in UTC
            raise ValueError("out of range") from exc
        if at > datetime.now(UTC):
            raise ValueError("is in the future: only past decisions are imported")
        return at

    @model_validator(mode="after")
    def _in_order(self) -> HistoryLine:
        problems: dict[str, str] = {}
        values: dict[str, Any] = {}
        if self.decided_at < self.submitted_at:
            problems["decided_at"] = "decided_at is before submitted_at"
            values["decided_at"] = self.decided_at.isoformat()
        if self.firm.established_on > china_date_of(self.submitted_at):
            problems["firm.established_on"] = "the firm was established after submitted_at"
            values["firm.established_on"] = self.firm.established_on.isoformat()
        approved = self.decision.approved_amount_yuan
        if approved is not None and approved > self.requested_amount_yuan:
            problems["decision.approved_amount_yuan"] = (
                "approved_amount_yuan exceeds requested_amount_yuan"
            )
            values["decision.approved_amount_yuan"] = approved
        if problems:
            raise invalid_fields(type(self).__name__, problems, values)
        return self
