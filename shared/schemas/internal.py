"""Contracts between the services (never public): the catalogue, match events, training export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool, field_validator, model_validator

from shared.enums import RegisterKind
from shared.schemas.firm import FirmFeatures
from shared.schemas.product import ProductFeatures
from shared.types import PositiveYuan, TermMonths
from shared.vocab.towns import is_town_code


class Catalogue(BaseModel):
    """Every active product as matching ranks it, and a version that changes with any of them."""

    version: str
    products: list[ProductFeatures]


class MatchEventIn(BaseModel):
    """A product shown to a firm at a rank, as the gateway records it for the statistics."""

    firm_id: int = Field(ge=1, le=2**63 - 1)
    product_id: int = Field(ge=1, le=2**63 - 1)
    rank: int = Field(ge=1, le=100_000)
    score: float = Field(allow_inf_nan=False)
    approval_probability: float | None = Field(default=None, ge=0, le=1)
    eligible: bool = True
    model_version: str = Field(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    degraded: bool = False
    town_code: str = Field(max_length=9)

    @field_validator("town_code")
    @classmethod
    def _town(cls, value: str) -> str:
        if not is_town_code(value):
            raise ValueError(f"unknown town code {value!r}")
        return value


class MatchEventBatch(BaseModel):
    events: list[MatchEventIn] = Field(max_length=10_000)


class ExportRow(BaseModel):
    """One line of the registry's /internal/exports/training, as far as training reads it."""

    application_id: int
    firm_id: int
    product_id: int
    submitted_at: datetime
    decided_at: datetime
    requested_amount_yuan: PositiveYuan
    requested_term_months: TermMonths
    firm: FirmFeatures
    product: ProductFeatures
    approved: StrictBool  # "yes" or 1 would hide a broken exporter

    @field_validator("submitted_at", "decided_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # The registry writes UTC; a naive time can only mean UTC too.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> ExportRow:
        if self.decided_at < self.submitted_at:
            raise ValueError("decided_at is before submitted_at")
        if self.product.id != self.product_id:
            raise ValueError(f"product_id {self.product_id} differs from product.id")
        return self


# The firm feed: what the matching service keeps of every registered firm, as columns.
FIRM_FEED_COLUMNS: tuple[str, ...] = ("id", "consent_matching", *FirmFeatures.model_fields)
FIRM_FEED_PAGE_ROWS = 50_000
# The official registers' entries of the page's firms (shared/schemas/registers.py): the firm,
# the register, the first and last day the entry counts (null: no end) and the yuan it is worth
# (a procurement contract's value; null for the others).
REGISTER_ENTRY_COLUMNS: tuple[str, ...] = ("firm_id", "kind", "starts_on", "ends_on", "amount_yuan")


class FirmFeedPage(BaseModel):
    """One page of the registry's firm feed (``GET /internal/feeds/firms``).

    Without ``changed_since``: every registered firm, by id, a page at a time (``after_id``).
    With it: the firms written at or after that time (``updated_at``), and the ids of firms
    erased since then. ``read_at`` is the registry's clock before it read: a write it did not
    see was stamped after ``read_at`` less the longest write transaction, which bounds the
    overlap the next ``changed_since`` must keep. Each column lists its values in id order;
    dates are ISO strings, absent values null.

    The firm columns carry each gating attribute as its portal declared it. What the official
    registers say comes beside them, for the reader to evaluate on the day it asks (an entry
    stops counting after its last day without any write): ``registers``, every published
    register and its version; ``entries``, the register entries of the page's firms (those of
    the firms written since ``changed_since``, and, for each register in ``entries_replaced``,
    of every firm in the page's id range: ``after_id`` < id ≤ ``next_after_id``, unbounded
    above on the last page). A register is replaced when it was published since
    ``changed_since`` (on a read of every firm, all of them are): the reader drops its entries
    for that id range and takes the page's.
    """

    read_at: datetime
    columns: dict[str, list[Any]]
    erased: list[int] = Field(default_factory=list)
    next_after_id: int | None = None
    registers: dict[RegisterKind, int] = Field(default_factory=dict)
    entries: dict[str, list[Any]] = Field(
        default_factory=lambda: {name: [] for name in REGISTER_ENTRY_COLUMNS}
    )
    entries_replaced: list[RegisterKind] = Field(default_factory=list)

    @model_validator(mode="after")
    def _aligned(self) -> FirmFeedPage:
        if set(self.columns) != set(FIRM_FEED_COLUMNS):
            raise ValueError("columns differ from FIRM_FEED_COLUMNS")
        lengths = {len(values) for values in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError("columns of different lengths")
        if set(self.entries) != set(REGISTER_ENTRY_COLUMNS):
            raise ValueError("entries differ from REGISTER_ENTRY_COLUMNS")
        if len({len(values) for values in self.entries.values()}) > 1:
            raise ValueError("entries of different lengths")
        return self
