"""Statistics read from the cube: the overview, every breakdown, the targets' amounts."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from services.registry.stats import cube
from services.registry.stats.cells import breakdown_cell, gap_cell, labels
from services.registry.stats.filters import Filters
from services.registry.stats.measures import hour_percentiles, one_decimal, ratio
from shared.schemas.stats import Dimension

OVERVIEW = (
    *cube.COUNTS[:10],
    "approved_firms",
    "first_loan_firms",
    "matched_firms",
    "response_hours",
)
BREAKDOWN = (*cube.COUNTS[:8], "applicant_firms")
AMOUNTS = (
    "applications",
    "approved_yuan",
    "small_micro_yuan",
    "small_micro_or_agri_yuan",
    "sme_yuan",
)
CUBE_DIMENSIONS = {d.value for d in Dimension}


def overview(conn: Connection, filters: Filters) -> dict[str, Any]:
    """The period's headline figures, from the statistics cube (see stats.cube)."""
    f = filters
    c = cube.read(conn, f.date_from, f.date_to, f.town_code, f.category, None, OVERVIEW).get(
        "", cube.Cell()
    )
    registered = cube.registered_by(conn, f.date_to, f.town_code)
    decided = c.approved + c.rejected
    p50, p90 = hour_percentiles(c.response_hours)
    approved_firms = c.distinct("approved_firms")
    first_loan_firms = c.distinct("first_loan_firms")
    return {
        "firms_registered": registered.firms_registered,
        "firms_with_need": registered.firms_with_need,
        "firms_matched": c.distinct("matched_firms"),
        "applications": c.applications,
        "approvals": c.approved,
        "rejections": c.rejected,
        "pending": c.pending,
        "approval_rate": ratio(c.approved, decided),
        "requested_amount_yuan": c.requested_yuan,
        "approved_amount_yuan": c.approved_yuan,
        "first_loan_firms": first_loan_firms,
        "first_loan_rate": ratio(first_loan_firms, approved_firms),
        "small_micro_share_of_approved": ratio(c.small_micro_yuan, c.approved_yuan),
        "response_hours_median": p50,
        "response_hours_p90": p90,
        "average_approved_rate_bp": one_decimal(c.rate_bp_sum / c.rate_bp_n)
        if c.rate_bp_n
        else None,
    }


def breakdown(conn: Connection, by: Dimension, filters: Filters) -> list[dict[str, Any]]:
    """Application figures per town, category, institution, size class, section or month,
    from the statistics cube (stats_cube for town, category and month, stats_cube_by for the
    others); ``breakdown_from_rows`` is the same from the rows, its definition."""
    f = filters
    cells = cube.read(conn, f.date_from, f.date_to, f.town_code, f.category, by.value, BREAKDOWN)
    labelled = labels(conn, by, cells)
    out = []
    for key in sorted(cells):
        c = cells[key]
        if not c.applications:  # a month or town with registrations or matches only
            continue
        zh, en = labelled[key]
        out.append(
            breakdown_cell(
                key,
                zh,
                en,
                firms=c.distinct("applicant_firms"),
                applications=c.applications,
                approved=c.approved,
                rejected=c.rejected,
                pending=c.pending,
                requested=c.requested_yuan,
                approved_amount=c.approved_yuan,
                first_loans=c.first_loans,
            )
        )
    return out


def category_amounts(conn: Connection, filters: Filters) -> dict[str, dict[str, int]]:
    """Approved amount per category (of those applied to): in all, to small and micro firms,
    to them or farming (section A), and to all but large firms. From the cube."""
    f = filters
    cells = cube.read(conn, f.date_from, f.date_to, f.town_code, f.category, "category", AMOUNTS)
    return {
        category: {
            "approved": c.approved_yuan,
            "small_micro": c.small_micro_yuan,
            "small_micro_or_agri": c.small_micro_or_agri_yuan,
            "sme": c.sme_yuan,
        }
        for category, c in sorted(cells.items())
        if c.applications
    }


def matched_without_application(conn: Connection, filters: Filters) -> list[dict[str, Any]]:
    """Per town and section (the firm's, now): firms shown matches in the period, and those of
    them that did not apply in it. The matched and the applicant firms are the cube's bitmaps
    (matches of the category anywhere; applications of the town and category), the firms'
    towns and sections the cube's registered-firm bitmaps, so no row is read."""
    f = filters
    matched = cube.read(conn, f.date_from, f.date_to, None, f.category, None, ("matched_firms",))
    applied = cube.read(
        conn, f.date_from, f.date_to, f.town_code, f.category, None, ("applicant_firms",)
    )
    shown = matched.get("", cube.Cell()).firms["matched_firms"]
    without = shown - applied.get("", cube.Cell()).firms["applicant_firms"]
    out = []
    for (town, section), months in sorted(cube.registered_groups(conn, f.town_code).items()):
        n = sum(shown.intersection_cardinality(firms) for firms in months)
        if n:
            m = sum(without.intersection_cardinality(firms) for firms in months)
            out.append(gap_cell(town, section, n, m))
    return out
