"""Statistics cube: monthly figures kept up to date by triggers that mark months dirty.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 10:00:00

Every insert, update or delete of an application (by submitted_at), a match event (by
created_at) or a firm (by created_at; updates only when its town, need or date change) marks
its China-time month in ``stats_dirty``; a product whose category changes, or a TRUNCATE on
PostgreSQL, marks every month the cube holds. On PostgreSQL the application, match event and
firm insert/delete triggers are statement-level with transition tables, so a bulk COPY marks
each month once rather than once per row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, the timestamp that decides its month)
SOURCES = (("application", "submitted_at"), ("match_event", "created_at"), ("firm", "created_at"))

PG_MARK = """
CREATE FUNCTION finmatch_stats_mark() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    changed text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT %1$I AS at FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT %1$I AS at FROM old_rows'
        ELSE 'SELECT %1$I AS at FROM new_rows UNION ALL SELECT %1$I FROM old_rows'
    END;
BEGIN
    EXECUTE format(
        'INSERT INTO stats_dirty (month, version) '
        'SELECT DISTINCT to_char(at AT TIME ZONE ''Asia/Shanghai'', ''YYYY-MM''), 1 '
        'FROM (' || changed || ') AS changed WHERE at IS NOT NULL '
        'ON CONFLICT (month) DO UPDATE SET version = stats_dirty.version + 1',
        TG_ARGV[0]);
    RETURN NULL;
END
$fn$
"""

PG_MARK_FIRM_ROW = """
CREATE FUNCTION finmatch_stats_mark_firm() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty (month, version)
    SELECT DISTINCT to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), 1
    FROM (VALUES (OLD.created_at), (NEW.created_at)) AS changed (at)
    ON CONFLICT (month) DO UPDATE SET version = stats_dirty.version + 1;
    RETURN NULL;
END
$fn$
"""

PG_MARK_ALL = """
CREATE FUNCTION finmatch_stats_mark_all() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty (month, version)
    SELECT DISTINCT month, 1 FROM stats_cube
    ON CONFLICT (month) DO UPDATE SET version = stats_dirty.version + 1;
    RETURN NULL;
END
$fn$
"""

FIRM_CHANGED = (
    "OLD.town_code IS DISTINCT FROM NEW.town_code"
    " OR (OLD.need_amount_yuan IS NULL) <> (NEW.need_amount_yuan IS NULL)"
    " OR OLD.created_at IS DISTINCT FROM NEW.created_at"
)


def _pg_upgrade() -> None:
    op.execute(PG_MARK)
    op.execute(PG_MARK_FIRM_ROW)
    op.execute(PG_MARK_ALL)
    for table, column in SOURCES:
        op.execute(
            f"CREATE TRIGGER stats_{table}_insert AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION finmatch_stats_mark('{column}')"
        )
        op.execute(
            f"CREATE TRIGGER stats_{table}_delete AFTER DELETE ON {table} "
            "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION finmatch_stats_mark('{column}')"
        )
        # TRUNCATE has no rows to look at: every month the cube holds is rebuilt.
        op.execute(
            f"CREATE TRIGGER stats_{table}_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION finmatch_stats_mark_all()"
        )
        if table != "firm":
            op.execute(
                f"CREATE TRIGGER stats_{table}_update AFTER UPDATE ON {table} "
                "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
                f"EXECUTE FUNCTION finmatch_stats_mark('{column}')"
            )
    op.execute(
        "CREATE TRIGGER stats_firm_update AFTER UPDATE ON firm FOR EACH ROW "
        f"WHEN ({FIRM_CHANGED}) EXECUTE FUNCTION finmatch_stats_mark_firm()"
    )
    op.execute(
        "CREATE TRIGGER stats_product_category AFTER UPDATE ON product FOR EACH ROW "
        "WHEN (OLD.category IS DISTINCT FROM NEW.category) "
        "EXECUTE FUNCTION finmatch_stats_mark_all()"
    )


def _sqlite_mark(row: str, column: str) -> str:
    return (
        "INSERT INTO stats_dirty (month, version) "
        f"SELECT strftime('%Y-%m', {row}.{column}, '+8 hours'), 1 WHERE {row}.{column} IS NOT NULL "
        "ON CONFLICT (month) DO UPDATE SET version = version + 1;"
    )


def _sqlite_upgrade() -> None:
    for table, column in SOURCES:
        op.execute(
            f"CREATE TRIGGER stats_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN {_sqlite_mark('NEW', column)} END"
        )
        op.execute(
            f"CREATE TRIGGER stats_{table}_delete AFTER DELETE ON {table} "
            f"BEGIN {_sqlite_mark('OLD', column)} END"
        )
        when = f" WHEN {FIRM_CHANGED}" if table == "firm" else ""
        op.execute(
            f"CREATE TRIGGER stats_{table}_update AFTER UPDATE ON {table} FOR EACH ROW{when} "
            f"BEGIN {_sqlite_mark('OLD', column)} {_sqlite_mark('NEW', column)} END"
        )
    op.execute(
        "CREATE TRIGGER stats_product_category AFTER UPDATE OF category ON product FOR EACH ROW "
        "WHEN OLD.category IS NOT NEW.category BEGIN "
        "INSERT INTO stats_dirty (month, version) SELECT DISTINCT month, 1 FROM stats_cube "
        "WHERE true ON CONFLICT (month) DO UPDATE SET version = version + 1; END"
    )


def upgrade() -> None:
    op.create_table(
        "stats_dirty",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("month"),
    )
    op.create_table(
        "stats_cube",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (
                "applications",
                "approved",
                "rejected",
                "pending",
                "requested_yuan",
                "approved_yuan",
                "small_micro_yuan",
                "first_loans",
                "rate_bp_sum",
                "rate_bp_n",
                "firms_registered",
                "firms_with_need",
            )
        ),
        *(
            sa.Column(name, sa.LargeBinary(), nullable=False)
            for name in (
                "applicant_firms",
                "approved_firms",
                "first_loan_firms",
                "matched_firms",
                "response_hours",
            )
        ),
        sa.PrimaryKeyConstraint("month", "town_code", "category"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
        month = "to_char({c} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"
    else:
        _sqlite_upgrade()
        month = "strftime('%Y-%m', {c}, '+8 hours')"
    # What is already there: every month with data is dirty, the first query builds it.
    sources = " UNION ".join(
        f"SELECT {month.format(c=column)} AS month FROM {table} WHERE {column} IS NOT NULL"
        for table, column in SOURCES
    )
    op.execute(f"INSERT INTO stats_dirty (month, version) SELECT month, 1 FROM ({sources}) m")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    triggers = [f"stats_{table}_{event}" for table, _ in SOURCES for event in ("insert", "delete")]
    triggers += [f"stats_{table}_update" for table, _ in SOURCES]
    triggers += [f"stats_{table}_truncate" for table, _ in SOURCES] if postgres else []
    for name, table in [(t, t.split("_", 1)[1].rsplit("_", 1)[0]) for t in triggers] + [
        ("stats_product_category", "product")
    ]:
        op.execute(
            f"DROP TRIGGER IF EXISTS {name} ON {table}"
            if postgres
            else f"DROP TRIGGER IF EXISTS {name}"
        )
    if postgres:
        for function in (
            "finmatch_stats_mark",
            "finmatch_stats_mark_firm",
            "finmatch_stats_mark_all",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("stats_cube")
    op.drop_table("stats_dirty")
