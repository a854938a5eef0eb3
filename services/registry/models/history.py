"""Past decisions an institution imported: training data, never live applications.

They live in their own table, not in ``application``, so that nothing live reads them: no firm
record, no lead, no event, and no official's statistic (services/registry/stats reads
``application`` only). The training export merges them with the live decisions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from services.registry.models.columns import BigId, UtcDateTime, utcnow
from shared.schemas.application import DecisionBase


class ImportedDecision(DecisionBase, table=True):
    """One imported line: what the institution saw, what it decided, and which import wrote it."""

    __tablename__ = "imported_decision"
    __table_args__ = (
        # The training export reads them in decided_at order, as it reads live decisions.
        sa.Index("ix_imported_decision_decided", "decided_at", "id"),
        sa.Index("ix_imported_decision_institution", "institution_id", "id"),
        # One institution holds a past decision once: a re-import finds it (and a concurrent
        # one loses here). NULL (rows from before migration 0021) never collides.
        sa.Index("uq_imported_decision_fingerprint", "institution_id", "fingerprint", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    institution_id: int = Field(foreign_key="institution.id", sa_type=BigId)
    product_id: int = Field(foreign_key="product.id", sa_type=BigId, index=True)
    imported_by_principal_id: int = Field(foreign_key="principal.id", sa_type=BigId)
    import_id: str = Field(max_length=64)
    line: int
    # HMAC-SHA256 of the credit code under the registry's key (hex); the code is never stored.
    credit_code_hash: str | None = Field(default=None, max_length=64)
    requested_amount_yuan: int = Field(sa_type=sa.BigInteger)
    requested_term_months: int
    # The firm's features as of submitted_at (size class and age computed then); the product
    # as it was at the import (no earlier version of it is kept).
    firm_snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    product_snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    submitted_at: datetime = Field(sa_type=UtcDateTime)
    decided_at: datetime = Field(sa_type=UtcDateTime)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # SHA-256 (hex) of the line's canonical form (services/registry/history.py, fingerprint);
    # NULL on the rows imported before it existed.
    fingerprint: str | None = Field(default=None, max_length=64)
