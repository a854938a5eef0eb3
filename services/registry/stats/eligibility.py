"""Applications by product with the share that matching's rules found ineligible at submission.

A bank sees how often firms apply for what they cannot get; an official sees where products
are misunderstood. Read from the statistics cube's product cells (per month: the product's
applications by eligibility status and its applicant firms as a bitmap, for the city and each
town), so a city-scale history is a few thousand rows, not every application;
``products_from_rows`` in tests/registry/stats_oracle.py is the same from the rows, its
definition. Cells of fewer than ``MIN_CELL_FIRMS`` distinct firms are withheld.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.registry.stats import cube
from services.registry.stats.cells import MIN_CELL_FIRMS, withheld
from services.registry.stats.filters import Filters
from services.registry.stats.measures import ratio
from services.registry.stats.tables import INST, PROD

FIGURES = ("applications", "eligible", "ineligible", "unknown", "ineligible_share")
COLUMNS = ("applications", *cube.ELIGIBILITY, "applicant_firms")


def by_product(
    conn: Connection, filters: Filters, institution_id: int | None = None
) -> list[dict[str, Any]]:
    """One row per product with applications in the period (most applications first)."""
    f = filters
    cells = cube.read_products(conn, f.date_from, f.date_to, f.town_code, f.category, COLUMNS)
    parts: dict[int, list[cube.Cell]] = {}
    for key, cell in cells.items():
        product, institution = (int(part) for part in key.split("/"))
        if institution_id is None or institution == institution_id:
            parts.setdefault(product, []).append(cell)
    names = _products(conn, list(parts))
    if f.category is not None:  # the product's category now, as the rows' filter reads it
        parts = {p: c for p, c in parts.items() if p in names and names[p][2] == f.category}
    merged = {product: cube.merge(c) for product, c in parts.items()}
    rows = []
    for product, c in sorted(merged.items(), key=lambda kv: (-kv[1].applications, kv[0])):
        name, institution, category, institution_name = names.get(product, ("", 0, "", ""))
        row: dict[str, Any] = {
            "product_id": product,
            "name": name,
            "category": category,
            "institution_id": institution,
            "institution_name": institution_name,
        }
        if c.distinct("applicant_firms") < MIN_CELL_FIRMS:
            row |= withheld(FIGURES)
        else:
            row |= {
                "suppressed": False,
                "applications": c.applications,
                "eligible": c.eligible,
                "ineligible": c.ineligible,
                "unknown": c.unknown,
                # Of the applications that were checked (unknown ones say nothing either way).
                "ineligible_share": ratio(c.ineligible, c.eligible + c.ineligible),
            }
        rows.append(row)
    return rows


def _products(conn: Connection, ids: list[int]) -> dict[int, tuple[str, int, str, str]]:
    """(name, institution id, category, institution name) of each product in ``ids``."""
    stmt = (
        sa.select(
            PROD.c.id, PROD.c.name, PROD.c.institution_id, PROD.c.category, INST.c.name.label("i")
        )
        .join(INST, INST.c.id == PROD.c.institution_id)
        .where(PROD.c.id.in_(ids))
    )
    return {r.id: (r.name, r.institution_id, r.category, r.i) for r in conn.execute(stmt)}
