"""Statistics computed straight from the rows, one application at a time where it matters:
the definitions the statistics cube's answers must match (the overview, the league table,
the targets' amounts, applications per product; ``stats.breakdown_from_rows`` is the
breakdowns')."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from services.registry.stats.cells import MIN_CELL_FIRMS, gap_cell, withheld
from services.registry.stats.china_time import date_sql, day_start
from services.registry.stats.eligibility import FIGURES as PRODUCT_FIGURES
from services.registry.stats.filters import Filters, application_where, in_category, period
from services.registry.stats.league import LEAGUE_FIGURES, deadline_offsets
from services.registry.stats.measures import (
    application_measures,
    approved_yuan,
    count_if,
    firm_measures,
    one_decimal,
    ratio,
    response_percentiles,
    roomy,
    small_micro_yuan,
)
from services.registry.stats.tables import (
    APP,
    APPROVED,
    EVENT,
    FIRM,
    INST,
    PROD,
    REJECTED,
    SMALL_AND_MICRO,
    SUBMITTED,
)
from shared.vocab.size_class import SizeClass


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


def category_amounts_from_rows(conn: Connection, filters: Filters) -> dict[str, dict[str, int]]:
    """``stats.category_amounts`` by SQL over the rows: approved amounts per category."""
    small_micro_or_agri = sa.or_(
        APP.c.size_class.in_(SMALL_AND_MICRO), APP.c.industry_section == "A"
    )
    stmt = (
        sa.select(
            PROD.c.category,
            approved_yuan().label("approved"),
            small_micro_yuan().label("small_micro"),
            approved_yuan(small_micro_or_agri).label("small_micro_or_agri"),
            approved_yuan(APP.c.size_class != SizeClass.LARGE.value).label("sme"),
        )
        .select_from(APP.join(PROD, PROD.c.id == APP.c.product_id))
        .where(*application_where(filters))
        .group_by(PROD.c.category)
    )
    return {
        r.category: {
            "approved": int(r.approved),
            "small_micro": int(r.small_micro),
            "small_micro_or_agri": int(r.small_micro_or_agri),
            "sme": int(r.sme),
        }
        for r in conn.execute(stmt)
    }


def league_from_rows(
    conn: Connection, filters: Filters, deadline_days: int, today: date
) -> list[dict[str, Any]]:
    """``stats.institutions`` (the league table) by SQL over the rows, without the cube."""
    where = application_where(filters)
    approved = APP.c.status == APPROVED
    stmt = (
        sa.select(
            APP.c.institution_id,
            INST.c.name,
            INST.c.kind,
            sa.func.count().label("applications"),
            sa.func.count(sa.distinct(APP.c.firm_id)).label("firms"),
            count_if(APP.c.status.in_((APPROVED, REJECTED))).label("decided"),
            count_if(approved).label("approved"),
            approved_yuan().label("approved_amount"),
            small_micro_yuan().label("small_micro_amount"),
            count_if(sa.and_(approved, APP.c.is_first_loan)).label("first_loans"),
        )
        .select_from(APP.join(INST, INST.c.id == APP.c.institution_id))
        .where(*where)
        .group_by(APP.c.institution_id, INST.c.name, INST.c.kind)
        .order_by(APP.c.institution_id)
    )
    percentiles = response_percentiles(conn, where, APP.c.institution_id)
    late_by = _overdue_from_rows(conn, where, deadline_days, today)
    out = []
    for r in conn.execute(stmt).all():
        row: dict[str, Any] = {"institution_id": int(r.institution_id), "name": r.name}
        row["kind"] = r.kind
        if int(r.firms) < MIN_CELL_FIRMS:
            out.append(row | withheld(LEAGUE_FIGURES))
            continue
        p50, p90 = percentiles.get(r.institution_id, (None, None))
        late = late_by.get(int(r.institution_id), 0)
        out.append(
            row
            | {
                "applications": int(r.applications),
                "decided": int(r.decided),
                "approved": int(r.approved),
                "approval_rate": ratio(int(r.approved), int(r.decided)),
                "response_hours_median": p50,
                "response_hours_p90": p90,
                "approved_amount_yuan": int(r.approved_amount),
                "small_micro_approved_amount_yuan": int(r.small_micro_amount),
                "first_loans": int(r.first_loans),
                "overdue": late,
                "overdue_share": ratio(late, int(r.applications)),
                "suppressed": False,
            }
        )
    return out


def _overdue_from_rows(
    conn: Connection, where: list[ColumnElement[bool]], deadline_days: int, today: date
) -> dict[int, int]:
    """Per institution: open or decided applications answered after their deadline (working
    days by the holiday calendar), or not at all with the deadline passed; one row each."""
    rows = conn.execute(
        sa.select(
            APP.c.institution_id,
            date_sql(conn, APP.c.submitted_at).label("submitted"),
            date_sql(conn, APP.c.decided_at).label("decided"),
        ).where(*where, APP.c.status.in_((SUBMITTED, APPROVED, REJECTED)))
    ).all()
    due = deadline_offsets([_as_date(r.submitted) for r in rows], deadline_days)
    late: dict[int, int] = {}
    for r, deadline in zip(rows, due, strict=True):
        answered = None if r.decided is None else _as_date(r.decided)
        if (answered is None and today > deadline) or (
            answered is not None and answered > deadline
        ):
            late[int(r.institution_id)] = late.get(int(r.institution_id), 0) + 1
    return late


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def matched_without_application_from_rows(
    conn: Connection, filters: Filters
) -> list[dict[str, Any]]:
    """``stats.matched_without_application`` by SQL over the rows: per town and section of the
    firm now, firms shown matches in the period, and those with no application in it."""
    event_where = period(EVENT.c.created_at, filters)
    if filters.category is not None:
        event_where.append(in_category(EVENT.c.product_id, filters.category))
    matched = (
        sa.select(EVENT.c.firm_id).where(*event_where, EVENT.c.firm_id.is_not(None)).distinct()
    ).subquery()
    applied = sa.exists().where(APP.c.firm_id == FIRM.c.id, *application_where(filters))
    firm_where: list[ColumnElement[bool]] = []
    if filters.town_code is not None:
        firm_where.append(FIRM.c.town_code == filters.town_code)
    stmt = (
        sa.select(
            FIRM.c.town_code,
            FIRM.c.industry_section,
            sa.func.count().label("matched"),
            count_if(~applied).label("without_application"),
        )
        .select_from(matched.join(FIRM, FIRM.c.id == matched.c.firm_id))
        .where(*firm_where)
        .group_by(FIRM.c.town_code, FIRM.c.industry_section)
        .order_by(FIRM.c.town_code, FIRM.c.industry_section)
    )
    return [
        gap_cell(r.town_code, r.industry_section, int(r.matched), int(r.without_application))
        for r in conn.execute(stmt)
    ]


def products_from_rows(
    conn: Connection, filters: Filters, institution_id: int | None = None
) -> list[dict[str, Any]]:
    """``eligibility.by_product`` by SQL over the rows: per product, its applications by
    eligibility status and its distinct firms (withheld below ``MIN_CELL_FIRMS``)."""
    status = APP.c.eligibility_status
    where = application_where(filters)
    if institution_id is not None:
        where.append(APP.c.institution_id == institution_id)
    stmt = (
        sa.select(
            APP.c.product_id,
            PROD.c.name,
            PROD.c.category,
            PROD.c.institution_id,
            INST.c.name.label("institution_name"),
            sa.func.count().label("applications"),
            sa.func.count(sa.distinct(APP.c.firm_id)).label("firms"),
            count_if(status == "eligible").label("eligible"),
            count_if(status == "ineligible").label("ineligible"),
            count_if(status == "unknown").label("unknown"),
        )
        .select_from(
            APP.join(PROD, PROD.c.id == APP.c.product_id).join(
                INST, INST.c.id == PROD.c.institution_id
            )
        )
        .where(*where)
        .group_by(
            APP.c.product_id, PROD.c.name, PROD.c.category, PROD.c.institution_id, INST.c.name
        )
    )
    out = []
    for r in sorted(conn.execute(stmt), key=lambda r: (-int(r.applications), r.product_id)):
        row: dict[str, Any] = {
            "product_id": int(r.product_id),
            "name": r.name,
            "category": r.category,
            "institution_id": int(r.institution_id),
            "institution_name": r.institution_name,
        }
        if int(r.firms) < MIN_CELL_FIRMS:
            out.append(row | withheld(PRODUCT_FIGURES))
            continue
        checked = int(r.eligible) + int(r.ineligible)
        out.append(
            row
            | {
                "suppressed": False,
                "applications": int(r.applications),
                "eligible": int(r.eligible),
                "ineligible": int(r.ineligible),
                "unknown": int(r.unknown),
                "ineligible_share": ratio(int(r.ineligible), checked),
            }
        )
    return out
