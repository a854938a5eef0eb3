"""The overview computed straight from the rows: the definition the statistics cube must match."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from services.registry.stats.china_time import day_start
from services.registry.stats.filters import Filters, application_where, in_category, period
from services.registry.stats.measures import (
    application_measures,
    firm_measures,
    one_decimal,
    ratio,
    response_percentiles,
    roomy,
)
from services.registry.stats.tables import EVENT, FIRM


def overview_from_rows(conn: Connection, filters: Filters) -> dict[str, Any]:
    """``stats.overview`` by SQL over the rows, without the cube."""
    roomy(conn)
    firms_where: list[ColumnElement[bool]] = []
    if filters.date_to is not None:  # registered by the end of the period
        firms_where.append(FIRM.c.created_at < day_start(filters.date_to))
    if filters.town_code is not None:
        firms_where.append(FIRM.c.town_code == filters.town_code)
    firms = conn.execute(sa.select(*firm_measures()).where(*firms_where)).one()
    matched_where = period(EVENT.c.created_at, filters)
    if filters.town_code is not None:
        matched_where.append(EVENT.c.town_code == filters.town_code)
    if filters.category is not None:
        matched_where.append(in_category(EVENT.c.product_id, filters.category))
    matched = conn.execute(
        sa.select(sa.func.count(sa.distinct(EVENT.c.firm_id))).where(*matched_where)
    ).scalar_one()
    where = application_where(filters)
    a = conn.execute(sa.select(*application_measures(firms=False)).where(*where)).one()
    decided = int(a.approved) + int(a.rejected)
    p50, p90 = response_percentiles(conn, where).get(None, (None, None))
    return {
        "firms_registered": int(firms.firms),
        "firms_with_need": int(firms.with_need),
        "firms_matched": int(matched),
        "applications": int(a.applications),
        "approvals": int(a.approved),
        "rejections": int(a.rejected),
        "pending": int(a.pending),
        "approval_rate": ratio(int(a.approved), decided),
        "requested_amount_yuan": int(a.requested),
        "approved_amount_yuan": int(a.approved_amount),
        "first_loan_firms": int(a.first_loan_firms),
        "first_loan_rate": ratio(int(a.first_loan_firms), int(a.approved_firms)),
        "small_micro_share_of_approved": ratio(int(a.small_micro_amount), int(a.approved_amount)),
        "response_hours_median": p50,
        "response_hours_p90": p90,
        "average_approved_rate_bp": one_decimal(a.avg_rate_bp),
    }
