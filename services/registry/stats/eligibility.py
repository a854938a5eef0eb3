"""Applications by product with the share that matching's rules found ineligible at submission.

A bank sees how often firms apply for what they cannot get; an official sees where products
are misunderstood. Read from the rows (the application's eligibility status), like the other
row answers; cells of fewer than ``MIN_CELL_FIRMS`` distinct firms are withheld.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.registry.stats.cells import MIN_CELL_FIRMS, withheld
from services.registry.stats.filters import Filters, application_where
from services.registry.stats.measures import count_if, ratio
from services.registry.stats.tables import APP, INST, PROD

FIGURES = ("applications", "eligible", "ineligible", "unknown", "ineligible_share")


def by_product(
    conn: Connection, filters: Filters, institution_id: int | None = None
) -> list[dict[str, Any]]:
    """One row per product with applications in the period (most applications first)."""
    status = APP.c.eligibility_status
    where = application_where(filters)
    if institution_id is not None:
        where.append(APP.c.institution_id == institution_id)
    stmt = (
        sa.select(
            APP.c.product_id,
            sa.func.count().label("applications"),
            sa.func.count(sa.distinct(APP.c.firm_id)).label("firms"),
            count_if(status == "eligible").label("eligible"),
            count_if(status == "ineligible").label("ineligible"),
            count_if(status == "unknown").label("unknown"),
        )
        .where(*where)
        .group_by(APP.c.product_id)
    )
    counted = conn.execute(stmt).all()
    names = {
        row.id: (row.name, row.institution_id, row.category, row.institution_name)
        for row in conn.execute(
            sa.select(
                PROD.c.id,
                PROD.c.name,
                PROD.c.institution_id,
                PROD.c.category,
                INST.c.name.label("institution_name"),
            )
            .join(INST, INST.c.id == PROD.c.institution_id)
            .where(PROD.c.id.in_([r.product_id for r in counted]))
        )
    }
    rows = []
    for r in sorted(counted, key=lambda r: (-r.applications, r.product_id)):
        name, institution, category, institution_name = names.get(r.product_id, ("", 0, "", ""))
        row: dict[str, Any] = {
            "product_id": r.product_id,
            "name": name,
            "category": category,
            "institution_id": institution,
            "institution_name": institution_name,
        }
        if r.firms < MIN_CELL_FIRMS:
            row |= withheld(FIGURES)
        else:
            checked = int(r.eligible) + int(r.ineligible)
            row |= {
                "suppressed": False,
                "applications": int(r.applications),
                "eligible": int(r.eligible),
                "ineligible": int(r.ineligible),
                "unknown": int(r.unknown),
                # Of the applications that were checked (unknown ones say nothing either way).
                "ineligible_share": ratio(int(r.ineligible), checked),
            }
        rows.append(row)
    return rows
