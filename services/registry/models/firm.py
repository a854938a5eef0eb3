"""The firm table: the shared profile's columns, plus identity, owner and derived size."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from services.registry.models.columns import BigId, UtcDateTime, utcnow
from shared.schemas.firm import FirmProfile
from shared.vocab.size_class import CURRENT_RULESET, classify_size


class Firm(FirmProfile, table=True):
    """A stored firm: the profile's fields (declared in shared/) and what the registry adds."""

    __tablename__ = "firm"
    __table_args__ = (
        sa.Index("ix_firm_owner_id", "owner_principal_id", "id"),
        sa.Index("ix_firm_town_size", "town_code", "size_class"),
        sa.Index("ix_firm_created", "created_at"),
        # The matching service's firm feed: the firms changed since its last read.
        sa.Index("ix_firm_updated", "updated_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    credit_code: str = Field(max_length=18, unique=True)
    owner_principal_id: int = Field(foreign_key="principal.id", sa_type=BigId)
    size_class: str = Field(max_length=6, description="derived, never entered by hand")
    size_ruleset: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    version: int = 1


def derive_size(values: dict[str, Any]) -> tuple[str, str]:
    """Size class and the ruleset that produced it, from a firm's stored values."""
    size = classify_size(
        values["industry_section"],
        values.get("industry_division"),
        employees=values["employees"],
        revenue_yuan=values["annual_revenue_yuan"],
        total_assets_yuan=values["total_assets_yuan"],
    )
    return size.value, CURRENT_RULESET
