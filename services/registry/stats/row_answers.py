"""Statistics read straight from the rows: the firms matched but never applying, the firms
registered now, and ``breakdown_from_rows``, the definition the cube's breakdowns are tested
against (tests/registry/test_stats_cube.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from services.registry.stats.cells import MIN_CELL_FIRMS, breakdown_cell, labels
from services.registry.stats.china_time import month_sql
from services.registry.stats.filters import Filters, application_where, in_category, period
from services.registry.stats.measures import (
    application_measures,
    count_if,
    firm_measures,
    roomy,
)
from services.registry.stats.tables import APP, EVENT, FIRM, PROD
from shared.schemas.stats import Dimension
from shared.vocab.labels import section_label, town_label


def breakdown_from_rows(conn: Connection, by: Dimension, filters: Filters) -> list[dict[str, Any]]:
    """``breakdown`` straight from the rows, for every dimension."""
    roomy(conn)
    source: Any = APP
    if by is Dimension.CATEGORY:
        source = APP.join(PROD, PROD.c.id == APP.c.product_id)
    key = {
        Dimension.TOWN: APP.c.town_code,
        Dimension.CATEGORY: PROD.c.category,
        Dimension.INSTITUTION: sa.cast(APP.c.institution_id, sa.String),
        Dimension.SIZE_CLASS: APP.c.size_class,
        Dimension.INDUSTRY: APP.c.industry_section,
        Dimension.MONTH: month_sql(conn, APP.c.submitted_at),  # China time, like the period
    }[by].label("key")
    stmt = (
        sa.select(key, *application_measures())
        .select_from(source)
        .where(*application_where(filters))
        .group_by(key)
        .order_by(key)
    )
    rows = conn.execute(stmt).all()
    labelled = labels(conn, by, (str(r.key) for r in rows))
    return [
        breakdown_cell(
            str(r.key),
            *labelled[str(r.key)],
            firms=int(r.firms),
            applications=int(r.applications),
            approved=int(r.approved),
            rejected=int(r.rejected),
            pending=int(r.pending),
            requested=int(r.requested),
            approved_amount=int(r.approved_amount),
            first_loans=int(r.first_loans),
        )
        for r in rows
    ]


def matched_without_application(conn: Connection, filters: Filters) -> list[dict[str, Any]]:
    """Per town and section: firms shown matches in the period, and those that never applied."""
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
    out = []
    for r in conn.execute(stmt):
        town_zh, town_en = town_label(r.town_code)
        section_zh, section_en = section_label(r.industry_section)
        suppressed = int(r.matched) < MIN_CELL_FIRMS
        out.append(
            {
                "town_code": r.town_code,
                "town_zh": town_zh,
                "town_en": town_en,
                "industry_section": r.industry_section,
                "section_zh": section_zh,
                "section_en": section_en,
                "firms_matched": None if suppressed else int(r.matched),
                "firms_matched_no_application": (
                    None if suppressed else int(r.without_application)
                ),
                "suppressed": suppressed,
            }
        )
    return out


def registered_firms(conn: Connection, town_code: str | None) -> tuple[int, int]:
    """Firms registered (and those with a stated need), now."""
    where = [] if town_code is None else [FIRM.c.town_code == town_code]
    row = conn.execute(sa.select(*firm_measures()).where(*where)).one()
    return int(row.firms), int(row.with_need)


def firms_by_size(conn: Connection, town_code: str | None) -> dict[str, dict[str, int]]:
    """Registered firms per size class (and those with a stated need), now."""
    where = [] if town_code is None else [FIRM.c.town_code == town_code]
    stmt = sa.select(FIRM.c.size_class, *firm_measures()).where(*where).group_by(FIRM.c.size_class)
    return {
        r.size_class: {"firms": int(r.firms), "with_need": int(r.with_need)}
        for r in conn.execute(stmt)
    }
