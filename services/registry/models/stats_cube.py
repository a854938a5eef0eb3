"""The officials' statistics cube: per China-time month, figures summed over applications,
match events and registrations, at four levels (the city, a town, a category, a town and a
category), with the firms behind each cell as compressed bitmaps so that distinct firms over
any run of months stay exact. ``stats_cube_by`` holds the same per month for the breakdowns by
institution, size class and industry section (each at the same four levels), and per product
(the city and each town) its applications by eligibility status.

``stats_dirty`` names the months whose cube rows no longer match the rows they summarise: a
bulk statement (more than ``LOG_ROWS_MAX`` rows), a product's new category or a TRUNCATE marks
them, and the next statistics query rebuilds them. A smaller write is logged instead, row by
row, by the triggers of migration 0019 (whatever wrote it: the API, COPY, a hand-made UPDATE),
and the next query applies it to the cells it touches. See services/registry/stats/refresh.py.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from services.registry.models.columns import UtcDateTime

ALL = ""  # the town or category column of a cell that covers all of them

stats_dirty = sa.Table(
    "stats_dirty",
    SQLModel.metadata,
    sa.Column("month", sa.String(7), primary_key=True),  # YYYY-MM, China time
    # Bumped by every marking write, so a rebuild clears only what it has seen.
    sa.Column("version", sa.BigInteger(), nullable=False),
)

stats_cube = sa.Table(
    "stats_cube",
    SQLModel.metadata,
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("town_code", sa.String(9), primary_key=True),
    sa.Column("category", sa.String(40), primary_key=True),
    sa.Column("applications", sa.BigInteger(), nullable=False),
    sa.Column("approved", sa.BigInteger(), nullable=False),
    sa.Column("rejected", sa.BigInteger(), nullable=False),
    sa.Column("pending", sa.BigInteger(), nullable=False),
    sa.Column("requested_yuan", sa.BigInteger(), nullable=False),
    sa.Column("approved_yuan", sa.BigInteger(), nullable=False),
    sa.Column("small_micro_yuan", sa.BigInteger(), nullable=False),
    sa.Column("first_loans", sa.BigInteger(), nullable=False),
    sa.Column("rate_bp_sum", sa.BigInteger(), nullable=False),
    sa.Column("rate_bp_n", sa.BigInteger(), nullable=False),
    # Approved amounts to small, micro or farming (section A) firms, and to all but large ones:
    # the targets' shares (action-plan items 69 and 74).
    sa.Column("small_micro_or_agri_yuan", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("sme_yuan", sa.BigInteger(), nullable=False, server_default="0"),
    # Firms registered in the month (by created_at) as they are now; category cells hold 0.
    sa.Column("firms_registered", sa.BigInteger(), nullable=False),
    sa.Column("firms_with_need", sa.BigInteger(), nullable=False),
    # Roaring bitmaps (pyroaring's portable format) of firm ids.
    sa.Column("applicant_firms", sa.LargeBinary(), nullable=False),
    sa.Column("approved_firms", sa.LargeBinary(), nullable=False),
    sa.Column("first_loan_firms", sa.LargeBinary(), nullable=False),
    sa.Column("matched_firms", sa.LargeBinary(), nullable=False),
    # Application → decision in hours of the decided applications, float64, unordered.
    sa.Column("response_hours", sa.LargeBinary(), nullable=False),
)

# A breakdown's dimension whose cells ``stats_cube_by`` holds, and the application column it is.
BY_DIMENSIONS = {
    "institution": "institution_id",
    "size_class": "size_class",
    "industry": "industry_section",
}

# stats_cube_by's per-product cells (not a breakdown: /v1/stats/products reads them).
PRODUCT = "product"


def product_key(product_id: int, institution_id: int) -> str:
    """A product cell's key. The institution is part of it so that an institution's scope
    reads exactly its applications' cells, whatever a hand-made edit did to a row."""
    return f"{product_id}/{institution_id}"


stats_cube_by = sa.Table(
    "stats_cube_by",
    SQLModel.metadata,
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("dimension", sa.String(16), primary_key=True),  # a key of BY_DIMENSIONS
    # The institution id, size class, section, or PRODUCT_KEY's "product id/institution id".
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("town_code", sa.String(9), primary_key=True),
    sa.Column("category", sa.String(40), primary_key=True),
    sa.Column("applications", sa.BigInteger(), nullable=False),
    sa.Column("approved", sa.BigInteger(), nullable=False),
    sa.Column("rejected", sa.BigInteger(), nullable=False),
    sa.Column("pending", sa.BigInteger(), nullable=False),
    sa.Column("requested_yuan", sa.BigInteger(), nullable=False),
    sa.Column("approved_yuan", sa.BigInteger(), nullable=False),
    sa.Column("small_micro_yuan", sa.BigInteger(), nullable=False),
    sa.Column("first_loans", sa.BigInteger(), nullable=False),
    sa.Column("applicant_firms", sa.LargeBinary(), nullable=False),
    # The applications by the eligibility status matching's rules gave them at submission
    # (migration 0016): summed in every cell, read from the product cells by /v1/stats/products.
    sa.Column("eligible", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("ineligible", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("unknown", sa.BigInteger(), nullable=False, server_default="0"),
    # Institution cells only (the league table reads them; empty elsewhere): response hours as
    # in stats_cube, and the open or decided applications counted per (day submitted, day
    # decided or -1 when open) as int32 triplets (days since 1970-01-01, China time), so a
    # deadline in working days can be applied to any period, any deadline and any "today".
    sa.Column("response_hours", sa.LargeBinary(), nullable=False),
    sa.Column("day_counts", sa.LargeBinary(), nullable=False),
)

# --- the change logs (migration 0019) ---------------------------------------------------------
#
# A write of a few rows is logged instead of marking its month dirty: the triggers copy the
# statistics columns of each inserted, deleted or changed row (an update logs the row as it was,
# sign -1, and as it is, sign +1), and the next statistics query applies them to the cells they
# touch (stats/delta.py). A statement of more than ``LOG_ROWS_MAX`` rows (a bulk import, COPY)
# marks its months dirty as before: rebuilding a month costs less than applying that many.

LOG_ROWS_MAX = 1000


def _log_table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(
        name,
        SQLModel.metadata,
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False, index=True),  # YYYY-MM, China time
        sa.Column("sign", sa.SmallInteger(), nullable=False),  # -1 the row was, +1 it is
        *columns,
    )


# The application columns the cube reads, named as in ``application`` so that the cube's own
# query reads the log as it reads the table.
stats_application_change = _log_table(
    "stats_application_change",
    sa.Column("firm_id", sa.BigInteger()),
    sa.Column("product_id", sa.BigInteger(), nullable=False),
    sa.Column("institution_id", sa.BigInteger(), nullable=False),
    sa.Column("town_code", sa.String(9), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("is_first_loan", sa.Boolean(), nullable=False),
    sa.Column("size_class", sa.String(6), nullable=False),
    sa.Column("industry_section", sa.String(1), nullable=False),
    sa.Column("eligibility_status", sa.String(12), nullable=False),
    sa.Column("requested_amount_yuan", sa.BigInteger(), nullable=False),
    sa.Column("approved_amount_yuan", sa.BigInteger()),
    sa.Column("approved_rate_bp", sa.Integer()),
    sa.Column("submitted_at", UtcDateTime(), nullable=False),
    sa.Column("decided_at", UtcDateTime()),
)
stats_event_change = _log_table(
    "stats_event_change",
    sa.Column("firm_id", sa.BigInteger()),
    sa.Column("product_id", sa.BigInteger(), nullable=False),
    sa.Column("town_code", sa.String(9)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
stats_firm_change = _log_table(
    "stats_firm_change",
    sa.Column("id", sa.BigInteger(), nullable=False),
    sa.Column("town_code", sa.String(9), nullable=False),
    sa.Column("industry_section", sa.String(1), nullable=False),
    sa.Column("has_need", sa.Boolean(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
