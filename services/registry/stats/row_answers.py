"""Statistics read straight from the rows: the firms registered now (an index-only count),
and ``breakdown_from_rows``, the definition the cube's breakdowns are tested against
(tests/registry/test_stats_cube.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.registry.stats.cells import breakdown_cell, labels
from services.registry.stats.china_time import month_sql
from services.registry.stats.filters import Filters, application_where
from services.registry.stats.measures import (
    application_measures,
    firm_measures,
    roomy,
)
from services.registry.stats.tables import APP, FIRM, PROD
from shared.schemas.stats import Dimension


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
