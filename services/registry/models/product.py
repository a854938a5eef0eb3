"""Institutions and their financing products (the product's fields live in shared/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from services.registry.models.columns import BigId, UtcDateTime, utcnow
from shared.schemas.access import InstitutionBase
from shared.schemas.product import Eligibility, ProductBase, ProductTerms, Verification


class Institution(InstitutionBase, table=True):
    """An institution as stored: its name and kind (shared/), an id and when it joined."""

    __tablename__ = "institution"
    __table_args__ = (sa.UniqueConstraint("name"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Product(ProductBase, table=True):
    """A product as stored: its fields are ProductBase's (shared/schemas/product.py)."""

    __tablename__ = "product"
    __table_args__ = (sa.Index("ix_product_active_category", "active", "category"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    institution_id: int = Field(foreign_key="institution.id", sa_type=BigId, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # Deleting a product that has applications archives it: the history keeps its terms.
    archived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = 1


def product_snapshot(product: Product) -> dict[str, Any]:
    """The product's terms and rules as the firm applied: training must not see later edits."""
    keys = (
        set(ProductTerms.model_fields)
        | set(Eligibility.model_fields)
        | set(Verification.model_fields)
        | {"category"}
    )
    snap = {key: getattr(product, key) for key in sorted(keys)}
    snap["id"] = product.id
    snap["institution_id"] = product.institution_id
    return snap


# An approval's figure and the product terms that bound it (in a product snapshot's keys).
DECISION_TERM_BOUNDS = (
    ("approved_amount_yuan", "amount_min_yuan", "amount_max_yuan", "yuan"),
    ("term_months", "term_min_months", "term_max_months", "months"),
    ("rate_bp", "rate_min_bp", "rate_max_bp", "bp"),
)
