"""The aggregates statistics answers share: counts, sums, ratios and response percentiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from services.registry.stats.tables import (
    APP,
    APPROVED,
    FIRM,
    REJECTED,
    SMALL_AND_MICRO,
    SUBMITTED,
)


def count_if(condition: ColumnElement[bool]) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def sum_if(condition: ColumnElement[bool], value: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)


def approved_yuan(*among: ColumnElement[bool]) -> Any:
    """Amount approved, over approved applications (those also meeting ``among``, if given)."""
    return sum_if(sa.and_(APP.c.status == APPROVED, *among), APP.c.approved_amount_yuan)


def small_micro_yuan() -> Any:
    return approved_yuan(APP.c.size_class.in_(SMALL_AND_MICRO))


def firm_measures() -> list[Any]:
    """Firms registered, and those of them stating a financing need."""
    return [
        sa.func.count().label("firms"),
        count_if(FIRM.c.need_amount_yuan.is_not(None)).label("with_need"),
    ]


def application_measures(*, firms: bool = True) -> list[Any]:
    status = APP.c.status
    approved = status == APPROVED
    distinct_firms = [sa.func.count(sa.distinct(APP.c.firm_id)).label("firms")] if firms else []
    return [
        sa.func.count().label("applications"),
        *distinct_firms,
        count_if(approved).label("approved"),
        count_if(status == REJECTED).label("rejected"),
        count_if(status == SUBMITTED).label("pending"),
        sa.func.coalesce(sa.func.sum(APP.c.requested_amount_yuan), 0).label("requested"),
        approved_yuan().label("approved_amount"),
        small_micro_yuan().label("small_micro_amount"),
        count_if(sa.and_(approved, APP.c.is_first_loan)).label("first_loans"),
        # FILTER, not a CASE inside DISTINCT: only the matching rows are sorted.
        sa.func.count(sa.distinct(APP.c.firm_id))
        .filter(sa.and_(approved, APP.c.is_first_loan))
        .label("first_loan_firms"),
        sa.func.count(sa.distinct(APP.c.firm_id)).filter(approved).label("approved_firms"),
        sa.func.avg(sa.case((approved, APP.c.approved_rate_bp))).label("avg_rate_bp"),
    ]


def ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else round(numerator / denominator, 4)


def one_decimal(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def response_hours_sql(conn: Connection, source: sa.Table = APP) -> Any:
    """Application → decision in hours, as a SQL expression for the connection's dialect
    (over ``source``: the application table, or a table with its two columns)."""
    app = source.c
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", app.decided_at - app.submitted_at) / 3600.0
    return (sa.func.julianday(app.decided_at) - sa.func.julianday(app.submitted_at)) * 24.0


def hour_percentiles(hours: Sequence[float] | np.ndarray) -> tuple[float | None, float | None]:
    """Median and 90th percentile of response hours; None, None without any."""
    if not len(hours):
        return None, None
    # Linear interpolation, as PostgreSQL's percentile_cont does.
    p50, p90 = np.percentile(hours, (50, 90), method="linear")
    return one_decimal(float(p50)), one_decimal(float(p90))


def response_percentiles(
    conn: Connection, where: Sequence[ColumnElement[bool]], group: Any = None
) -> dict[Any, tuple[float | None, float | None]]:
    """Median and 90th percentile of response hours, per ``group`` value (or under None)."""
    decided = [*where, APP.c.decided_at.is_not(None), APP.c.status.in_((APPROVED, REJECTED))]
    hours = response_hours_sql(conn)
    key = sa.literal(None) if group is None else group
    if conn.dialect.name == "postgresql":
        stmt = (
            sa.select(
                key.label("key"),
                sa.func.percentile_cont(0.5).within_group(hours).label("p50"),
                sa.func.percentile_cont(0.9).within_group(hours).label("p90"),
            )
            .where(*decided)
            .group_by(key)
        )
        return {
            row.key: (one_decimal(row.p50), one_decimal(row.p90))
            for row in conn.execute(stmt)
            if row.p50
        }
    rows = conn.execute(sa.select(key.label("key"), hours.label("h")).where(*decided)).all()
    by_key: dict[Any, list[float]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(float(row.h))
    return {k: hour_percentiles(v) for k, v in by_key.items()}


def roomy(conn: Connection) -> None:
    """Give this transaction's sorts and hashes room (PostgreSQL's 4 MB default spills)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))
