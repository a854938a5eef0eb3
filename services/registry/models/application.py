"""Applications of firms to products, the consent they carry, and institutions' decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from services.registry.models.columns import BigId, UtcDateTime, utcnow
from shared.enums import ApplicationStatus
from shared.schemas.application import ApplicationTerms, DecisionBase

CONSENT_TEXT_VERSION = "2026-11-v1"


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


class Application(ApplicationTerms, table=True):
    """An application as stored: the terms asked (shared/), and what the registry adds."""

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
    status: str = Field(default=ApplicationStatus.SUBMITTED.value, max_length=16)
    consent_share_profile: bool = True
    consent_text_version: str = Field(default=CONSENT_TEXT_VERSION, max_length=32)
    consent_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # Set by withdrawing the application or revoking its consent: the institution's reads of
    # the firm through this application end then.
    consent_withdrawn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The consent this application shared the profile under (null once the firm is erased).
    consent_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            BigId,
            sa.ForeignKey("consent.id", ondelete="SET NULL", name="fk_application_consent_id"),
            index=True,
        ),
    )
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
    # Matching's rules for the firm and product at submission: eligible, ineligible (with the
    # unmet criteria) or unknown (matching could not be asked; never a reason to refuse).
    eligibility_status: str = Field(default="unknown", max_length=12)
    eligibility_unmet: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    version: int = 1

    @property
    def eligibility(self) -> dict[str, Any]:
        return {"status": self.eligibility_status, "unmet": self.eligibility_unmet}


class Decision(DecisionBase, table=True):
    """A decision as stored: the decision (shared/), and who made it when."""

    __tablename__ = "decision"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    application_id: int = Field(foreign_key="application.id", sa_type=BigId, unique=True)
    decided_by_principal_id: int = Field(foreign_key="principal.id", sa_type=BigId)
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
