"""Statistics change logs: a small write is applied to the cube's cells, not its month rebuilt.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 10:00:00

Until now every write to an application, a match event or a firm marked its month dirty, and
the next statistics query rebuilt the whole month from its rows (about 300 ms at 1,000,000
applications). Now the triggers copy the statistics columns of each row they see into a log
(``stats_application_change``, ``stats_event_change``, ``stats_firm_change``): an insert as it
is (sign +1), a delete as it was (-1), an update both ways, and only when a logged column
changed. The next query applies the log to the cells those rows touch (stats/delta.py).

A statement of more than 1,000 rows (a bulk import, COPY) marks its months dirty instead, as
before: rebuilding a month costs less than applying that many rows one by one. The product
category and TRUNCATE triggers (0005) still mark every month. On PostgreSQL the triggers are
statement-level with transition tables; the firm update trigger, row-level until now, becomes
one too. SQLite's are row-level. Nothing is rebuilt by this migration: the cube stays valid.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.registry.models.columns

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_ROWS_MAX = 1000  # as services/registry/models/stats_cube.py

APPLICATION_COLUMNS = (
    "firm_id",
    "product_id",
    "institution_id",
    "town_code",
    "status",
    "is_first_loan",
    "size_class",
    "industry_section",
    "eligibility_status",
    "requested_amount_yuan",
    "approved_amount_yuan",
    "approved_rate_bp",
    "submitted_at",
    "decided_at",
)
# (table, its log, the timestamp that decides the month, (log column, SQL over the row {r}))
LOGGED: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "application",
        "stats_application_change",
        "submitted_at",
        tuple((c, "{r}." + c) for c in APPLICATION_COLUMNS),
    ),
    (
        "match_event",
        "stats_event_change",
        "created_at",
        tuple((c, "{r}." + c) for c in ("firm_id", "product_id", "town_code", "created_at")),
    ),
    (
        "firm",
        "stats_firm_change",
        "created_at",
        (
            ("id", "{r}.id"),
            ("town_code", "{r}.town_code"),
            ("industry_section", "{r}.industry_section"),
            ("has_need", "{r}.need_amount_yuan IS NOT NULL"),
            ("created_at", "{r}.created_at"),
        ),
    ),
)


def _create_logs() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = services.registry.models.columns.UtcDateTime(timezone=True)

    def common() -> tuple[sa.Column[int] | sa.Column[str], ...]:
        return (
            sa.Column("seq", big_id, primary_key=True, autoincrement=True),
            sa.Column("month", sa.String(length=7), nullable=False),
            sa.Column("sign", sa.SmallInteger(), nullable=False),
        )

    op.create_table(
        "stats_application_change",
        *common(),
        sa.Column("firm_id", sa.BigInteger(), nullable=True),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("institution_id", sa.BigInteger(), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_first_loan", sa.Boolean(), nullable=False),
        sa.Column("size_class", sa.String(length=6), nullable=False),
        sa.Column("industry_section", sa.String(length=1), nullable=False),
        sa.Column("eligibility_status", sa.String(length=12), nullable=False),
        sa.Column("requested_amount_yuan", sa.BigInteger(), nullable=False),
        sa.Column("approved_amount_yuan", sa.BigInteger(), nullable=True),
        sa.Column("approved_rate_bp", sa.Integer(), nullable=True),
        sa.Column("submitted_at", when, nullable=False),
        sa.Column("decided_at", when, nullable=True),
    )
    op.create_table(
        "stats_event_change",
        *common(),
        sa.Column("firm_id", sa.BigInteger(), nullable=True),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=True),
        sa.Column("created_at", when, nullable=False),
    )
    op.create_table(
        "stats_firm_change",
        *common(),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("industry_section", sa.String(length=1), nullable=False),
        sa.Column("has_need", sa.Boolean(), nullable=False),
        sa.Column("created_at", when, nullable=False),
    )
    for log in ("stats_application_change", "stats_event_change", "stats_firm_change"):
        op.create_index(f"ix_{log}_month", log, ["month"])


# --- PostgreSQL: statement-level triggers with transition tables -----------------------------


def _pg_month(row: str, at: str) -> str:
    return f"to_char({row}.{at} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"


def _pg_log_function(table: str, log: str, at: str, columns: tuple[tuple[str, str], ...]) -> str:
    names = ", ".join(name for name, _ in columns)

    def values(row: str) -> str:
        return ", ".join(expr.format(r=row) for _, expr in columns)

    changed = f"ROW({values('o')}) IS DISTINCT FROM ROW({values('r')})"
    pairs = f"old_rows o JOIN new_rows r ON r.id = o.id WHERE {changed}"
    upsert = "ON CONFLICT (month) DO UPDATE SET version = stats_dirty.version + 1"
    return f"""
CREATE FUNCTION finmatch_stats_log_{table}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- Only rows whose logged values changed: an edit of anything else changes no figure.
        SELECT count(*) INTO n FROM {pairs};
        IF n = 0 THEN
            RETURN NULL;
        ELSIF n > {LOG_ROWS_MAX} THEN
            INSERT INTO stats_dirty (month, version)
            SELECT DISTINCT v.m, 1 FROM old_rows o JOIN new_rows r ON r.id = o.id
            CROSS JOIN LATERAL (VALUES ({_pg_month("o", at)}), ({_pg_month("r", at)})) AS v (m)
            WHERE {changed} AND v.m IS NOT NULL
            {upsert};
        ELSE
            INSERT INTO {log} (month, sign, {names})
            SELECT {_pg_month("o", at)}, -1, {values("o")} FROM {pairs} AND o.{at} IS NOT NULL
            UNION ALL
            SELECT {_pg_month("r", at)}, 1, {values("r")} FROM {pairs} AND r.{at} IS NOT NULL;
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO n FROM new_rows;
        IF n > {LOG_ROWS_MAX} THEN
            INSERT INTO stats_dirty (month, version)
            SELECT DISTINCT {_pg_month("r", at)}, 1 FROM new_rows r WHERE r.{at} IS NOT NULL
            {upsert};
        ELSE
            INSERT INTO {log} (month, sign, {names})
            SELECT {_pg_month("r", at)}, 1, {values("r")} FROM new_rows r WHERE r.{at} IS NOT NULL;
        END IF;
    ELSE
        SELECT count(*) INTO n FROM old_rows;
        IF n > {LOG_ROWS_MAX} THEN
            INSERT INTO stats_dirty (month, version)
            SELECT DISTINCT {_pg_month("o", at)}, 1 FROM old_rows o WHERE o.{at} IS NOT NULL
            {upsert};
        ELSE
            INSERT INTO {log} (month, sign, {names})
            SELECT {_pg_month("o", at)}, -1, {values("o")} FROM old_rows o WHERE o.{at} IS NOT NULL;
        END IF;
    END IF;
    RETURN NULL;
END
$fn$
"""


def _pg_upgrade() -> None:
    for table, log, at, columns in LOGGED:
        op.execute(_pg_log_function(table, log, at, columns))
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS stats_{table}_{event} ON {table}")
        transition = {
            "insert": "NEW TABLE AS new_rows",
            "delete": "OLD TABLE AS old_rows",
            "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        }
        for event, tables in transition.items():
            op.execute(
                f"CREATE TRIGGER stats_{table}_{event} AFTER {event.upper()} ON {table} "
                f"REFERENCING {tables} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION finmatch_stats_log_{table}()"
            )
    op.execute("DROP FUNCTION IF EXISTS finmatch_stats_mark_firm()")


# The 0005/0015 triggers, for the downgrade.
FIRM_CHANGED = (
    "OLD.town_code IS DISTINCT FROM NEW.town_code"
    " OR (OLD.need_amount_yuan IS NULL) <> (NEW.need_amount_yuan IS NULL)"
    " OR OLD.created_at IS DISTINCT FROM NEW.created_at"
    " OR OLD.industry_section IS DISTINCT FROM NEW.industry_section"
)
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


def _pg_downgrade() -> None:
    op.execute(PG_MARK_FIRM_ROW)
    for table, _, at, _ in LOGGED:
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS stats_{table}_{event} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS finmatch_stats_log_{table}()")
        op.execute(
            f"CREATE TRIGGER stats_{table}_insert AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION finmatch_stats_mark('{at}')"
        )
        op.execute(
            f"CREATE TRIGGER stats_{table}_delete AFTER DELETE ON {table} "
            "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION finmatch_stats_mark('{at}')"
        )
        if table == "firm":
            op.execute(
                "CREATE TRIGGER stats_firm_update AFTER UPDATE ON firm FOR EACH ROW "
                f"WHEN ({FIRM_CHANGED}) EXECUTE FUNCTION finmatch_stats_mark_firm()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER stats_{table}_update AFTER UPDATE ON {table} "
                "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
                f"EXECUTE FUNCTION finmatch_stats_mark('{at}')"
            )


# --- SQLite: row-level triggers ---------------------------------------------------------------


def _sqlite_log(
    log: str, at: str, columns: tuple[tuple[str, str], ...], row: str, sign: int
) -> str:
    names = ", ".join(name for name, _ in columns)
    values = ", ".join(expr.format(r=row) for _, expr in columns)
    return (
        f"INSERT INTO {log} (month, sign, {names}) "
        f"SELECT strftime('%Y-%m', {row}.{at}, '+8 hours'), {sign}, {values} "
        f"WHERE {row}.{at} IS NOT NULL;"
    )


def _sqlite_upgrade() -> None:
    for table, log, at, columns in LOGGED:
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS stats_{table}_{event}")
        changed = " OR ".join(
            f"({expr.format(r='OLD')}) IS NOT ({expr.format(r='NEW')})" for _, expr in columns
        )
        op.execute(
            f"CREATE TRIGGER stats_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN {_sqlite_log(log, at, columns, 'NEW', 1)} END"
        )
        op.execute(
            f"CREATE TRIGGER stats_{table}_delete AFTER DELETE ON {table} "
            f"BEGIN {_sqlite_log(log, at, columns, 'OLD', -1)} END"
        )
        op.execute(
            f"CREATE TRIGGER stats_{table}_update AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN {changed} BEGIN {_sqlite_log(log, at, columns, 'OLD', -1)} "
            f"{_sqlite_log(log, at, columns, 'NEW', 1)} END"
        )


def _sqlite_mark(row: str, at: str) -> str:
    return (
        "INSERT INTO stats_dirty (month, version) "
        f"SELECT strftime('%Y-%m', {row}.{at}, '+8 hours'), 1 WHERE {row}.{at} IS NOT NULL "
        "ON CONFLICT (month) DO UPDATE SET version = version + 1;"
    )


def _sqlite_downgrade() -> None:
    for table, _, at, _ in LOGGED:
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS stats_{table}_{event}")
        op.execute(
            f"CREATE TRIGGER stats_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN {_sqlite_mark('NEW', at)} END"
        )
        op.execute(
            f"CREATE TRIGGER stats_{table}_delete AFTER DELETE ON {table} "
            f"BEGIN {_sqlite_mark('OLD', at)} END"
        )
        when = f" WHEN {FIRM_CHANGED}" if table == "firm" else ""
        op.execute(
            f"CREATE TRIGGER stats_{table}_update AFTER UPDATE ON {table} FOR EACH ROW{when} "
            f"BEGIN {_sqlite_mark('OLD', at)} {_sqlite_mark('NEW', at)} END"
        )


def _mark_logged_months() -> None:
    """Months with logged changes not yet applied: dirty, so the old triggers' refresh sees them."""
    sources = " UNION ".join(
        f"SELECT month FROM {log}" for log in (name for _, name, _, _ in LOGGED)
    )
    op.execute(
        f"INSERT INTO stats_dirty (month, version) SELECT month, 1 FROM ({sources}) m "
        "WHERE true ON CONFLICT (month) DO UPDATE SET version = stats_dirty.version + 1"
    )


def upgrade() -> None:
    _create_logs()
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    _mark_logged_months()
    if op.get_bind().dialect.name == "postgresql":
        _pg_downgrade()
    else:
        _sqlite_downgrade()
    for _, log, _, _ in LOGGED:
        op.drop_index(f"ix_{log}_month", table_name=log)
        op.drop_table(log)
