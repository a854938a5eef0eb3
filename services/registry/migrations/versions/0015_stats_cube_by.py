"""Statistics cube by institution, size class and industry; the targets' amounts in the cube.

Revision ID: 0015
Revises: 0014
Create Date: 2027-02-20 10:00:00

``stats_cube_by`` holds per month the cells of the breakdowns by institution, size class and
industry section (and the league table's response hours and per-day counts, institution cells
only, and the firms registered per town and section); ``stats_cube`` gains the two approved
amounts the targets read. A firm that changes industry section now marks its month too (the
firm update trigger, dropped and created again: a trigger, not a table rebuild). Both tables
are derived data:
every month that has rows is marked dirty and rebuilt by the next statistics query (or the
prestart step's ``stats-refresh``). No table that carries the statistics triggers is touched:
``stats_cube`` gains its columns in place (ALTER TABLE ADD COLUMN, no rebuild).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "applications",
    "approved",
    "rejected",
    "pending",
    "requested_yuan",
    "approved_yuan",
    "small_micro_yuan",
    "first_loans",
)
BLOBS = ("applicant_firms", "response_hours", "day_counts")
NEW_AMOUNTS = ("small_micro_or_agri_yuan", "sme_yuan")
SOURCES = (("application", "submitted_at"), ("match_event", "created_at"), ("firm", "created_at"))


def _mark_every_month() -> None:
    """Every month with rows is dirty: the new cells and columns are built by the next query."""
    if op.get_bind().dialect.name == "postgresql":
        month = "to_char({c} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"
    else:
        month = "strftime('%Y-%m', {c}, '+8 hours')"
    sources = " UNION ".join(
        f"SELECT {month.format(c=column)} AS month FROM {table} WHERE {column} IS NOT NULL"
        for table, column in SOURCES
    )
    # "WHERE true": SQLite needs it to parse an upsert after a SELECT.
    op.execute(
        f"INSERT INTO stats_dirty (month, version) SELECT month, 1 FROM ({sources}) m "
        "WHERE true ON CONFLICT (month) DO UPDATE SET version = stats_dirty.version + 1"
    )


# A firm update marks its month when it moves a figure: its town, need, date or (new) section.
FIRM_CHANGED = (
    "OLD.town_code IS DISTINCT FROM NEW.town_code"
    " OR (OLD.need_amount_yuan IS NULL) <> (NEW.need_amount_yuan IS NULL)"
    " OR OLD.created_at IS DISTINCT FROM NEW.created_at"
)
SECTION_CHANGED = " OR OLD.industry_section IS DISTINCT FROM NEW.industry_section"


def _firm_update_trigger(when: str) -> None:
    """(Re)create the firm update trigger with the condition ``when``."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS stats_firm_update ON firm")
        op.execute(
            "CREATE TRIGGER stats_firm_update AFTER UPDATE ON firm FOR EACH ROW "
            f"WHEN ({when}) EXECUTE FUNCTION finmatch_stats_mark_firm()"
        )
        return
    mark = (
        "INSERT INTO stats_dirty (month, version) "
        "SELECT strftime('%Y-%m', {row}.created_at, '+8 hours'), 1 "
        "WHERE {row}.created_at IS NOT NULL "
        "ON CONFLICT (month) DO UPDATE SET version = version + 1;"
    )
    op.execute("DROP TRIGGER IF EXISTS stats_firm_update")
    op.execute(
        f"CREATE TRIGGER stats_firm_update AFTER UPDATE ON firm FOR EACH ROW WHEN {when} "
        f"BEGIN {mark.format(row='OLD')} {mark.format(row='NEW')} END"
    )


def upgrade() -> None:
    op.create_table(
        "stats_cube_by",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
        *(sa.Column(name, sa.LargeBinary(), nullable=False) for name in BLOBS),
        sa.PrimaryKeyConstraint("month", "dimension", "key", "town_code", "category"),
    )
    for name in NEW_AMOUNTS:
        op.add_column(
            "stats_cube", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
        )
    _firm_update_trigger(FIRM_CHANGED + SECTION_CHANGED)
    _mark_every_month()


def downgrade() -> None:
    _firm_update_trigger(FIRM_CHANGED)
    for name in NEW_AMOUNTS:
        op.drop_column("stats_cube", name)  # SQLite ≥ 3.35: in place, no rebuild
    op.drop_table("stats_cube_by")
