"""Applications of firms to products, the consent they carry, and institutions' decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import field_validator, model_validator
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow
from shared.enums import ApplicationStatus, DecisionOutcome, RejectionReason
from shared.errors import invalid_fields
from shared.types import PositiveYuan, RateBp, ShortText, TermMonths

CONSENT_TEXT_VERSION = "2026-11-v1"


class ApplicationCreate(SQLModel):
    firm_id: int = Field(ge=1, le=2**63 - 1)
    product_id: int = Field(ge=1, le=2**63 - 1)
    requested_amount_yuan: PositiveYuan
    requested_term_months: TermMonths
    consent_share_profile: bool = Field(
        description="the firm agrees to share its profile with the product's institution"
    )

    @field_validator("consent_share_profile")
    @classmethod
    def _consent(cls, value: bool) -> bool:
        if not value:
            raise ValueError("consent_share_profile must be true to apply")
        return value


STATS_COLUMNS = [
    "town_code",
    "status",
    "product_id",
    "institution_id",
    "firm_id",
    "size_class",
    "industry_section",
    "is_first_loan",
    "requested_amount_yuan",
    "approved_amount_yuan",
    "approved_rate_bp",
    "decided_at",
]


class Application(SQLModel, table=True):
    __tablename__ = "application"
    __table_args__ = (
        sa.Index("ix_application_institution", "institution_id", "id"),
        sa.Index("ix_application_owner", "owner_principal_id", "id"),
        sa.Index("ix_application_town_submitted", "town_code", "submitted_at"),
        # Officials' statistics read these columns only: on PostgreSQL an index-only scan
        # answers a period's aggregates without touching the wide rows (snapshots).
        sa.Index(
            "ix_application_stats",
            "submitted_at",
            postgresql_include=STATS_COLUMNS,
        ),
        # One open application per firm and product, whatever races the API loses.
        sa.Index(
            "uq_application_one_open",
            "firm_id",
            "product_id",
            unique=True,
            postgresql_where=sa.text("status = 'submitted'"),
            sqlite_where=sa.text("status = 'submitted'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    # The firm may be erased later; the application (and the bank's decision) stays.
    firm_id: int | None = Field(
        default=None,
        sa_column=sa.Column(BigId, sa.ForeignKey("firm.id", ondelete="SET NULL"), index=True),
    )
    product_id: int = Field(foreign_key="product.id", sa_type=BigId, index=True)
    institution_id: int = Field(foreign_key="institution.id", sa_type=BigId)
    owner_principal_id: int = Field(foreign_key="principal.id", sa_type=BigId)
    requested_amount_yuan: int = Field(sa_type=sa.BigInteger)
    requested_term_months: int
    status: str = Field(default=ApplicationStatus.SUBMITTED.value, max_length=16)
    consent_share_profile: bool = True
    consent_text_version: str = Field(default=CONSENT_TEXT_VERSION, max_length=32)
    consent_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    consent_withdrawn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # What the institution saw: the firm's features when it applied. Training uses this,
    # never today's profile.
    firm_snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    product_snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    town_code: str = Field(max_length=9)
    industry_section: str = Field(max_length=1)
    size_class: str = Field(max_length=6)
    is_first_loan: bool = False
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Copied from the decision when it is made, for statistics (no join over every decision).
    approved_amount_yuan: int | None = Field(default=None, sa_type=sa.BigInteger)
    approved_rate_bp: int | None = None
    version: int = 1


class ApplicationPublic(SQLModel):
    id: int
    firm_id: int | None
    product_id: int
    institution_id: int
    owner_principal_id: int
    requested_amount_yuan: int
    requested_term_months: int
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
    version: int


class DecisionCreate(SQLModel):
    outcome: DecisionOutcome
    approved_amount_yuan: PositiveYuan | None = None
    rate_bp: RateBp | None = None
    term_months: TermMonths | None = None
    rejection_reason: RejectionReason | None = None
    note: ShortText | None = None

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


class Decision(SQLModel, table=True):
    __tablename__ = "decision"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    application_id: int = Field(foreign_key="application.id", sa_type=BigId, unique=True)
    outcome: str = Field(max_length=16)
    approved_amount_yuan: int | None = Field(default=None, sa_type=sa.BigInteger)
    rate_bp: int | None = None
    term_months: int | None = None
    rejection_reason: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, max_length=500)
    decided_by_principal_id: int = Field(foreign_key="principal.id", sa_type=BigId)
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class DecisionPublic(SQLModel):
    id: int
    application_id: int
    outcome: DecisionOutcome
    approved_amount_yuan: int | None
    rate_bp: int | None
    term_months: int | None
    rejection_reason: RejectionReason | None
    note: str | None
    decided_by_principal_id: int
    decided_at: datetime
