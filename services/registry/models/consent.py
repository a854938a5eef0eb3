"""A firm's consent to share its profile with one institution, given by applying to it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow


class Consent(SQLModel, table=True):
    """One grant of the profile to one institution: every application of the firm to that
    institution's products joins the standing consent, until the firm revokes it (then the
    next application grants a new one). Revoking ends the institution's reads of the firm."""

    __tablename__ = "consent"
    __table_args__ = (
        sa.Index("ix_consent_firm", "firm_id", "id"),
        # At most one standing consent per firm and institution, whatever races the API loses.
        sa.Index(
            "uq_consent_active",
            "firm_id",
            "institution_id",
            unique=True,
            postgresql_where=sa.text("revoked_at IS NULL"),
            sqlite_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    # An erased firm's consents go with it: there is no profile left to share.
    firm_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("firm.id", ondelete="CASCADE"), nullable=False)
    )
    institution_id: int = Field(foreign_key="institution.id", sa_type=BigId)
    granted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
