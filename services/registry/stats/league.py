"""The institutions' league table (action-plan item 68): speed, approvals, reach, deadlines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from services.registry.stats.cells import MIN_CELL_FIRMS, withheld
from services.registry.stats.china_time import date_sql
from services.registry.stats.filters import Filters, application_where
from services.registry.stats.measures import (
    approved_yuan,
    count_if,
    ratio,
    response_percentiles,
    small_micro_yuan,
)
from services.registry.stats.tables import (
    APP,
    APPROVED,
    INST,
    REJECTED,
    SUBMITTED,
)
from services.registry.stats.workdays import add_workdays

LEAGUE_FIGURES = (
    "applications",
    "decided",
    "approved",
    "approval_rate",
    "response_hours_median",
    "response_hours_p90",
    "approved_amount_yuan",
    "small_micro_approved_amount_yuan",
    "first_loans",
    "overdue",
    "overdue_share",
)


def deadline_offsets(submitted: Sequence[date], working_days: int) -> list[date]:
    """The day by which an answer is due: ``working_days`` working days after submission, by
    the State Council's holiday calendar (holidays off, swapped weekend days worked; see
    ``workdays`` for the years it covers and the Monday–Friday fallback beyond them)."""
    return add_workdays(list(submitted), working_days)


def institutions(
    conn: Connection, filters: Filters, deadline_days: int, today: date
) -> list[dict[str, Any]]:
    """The league table (action-plan item 68): speed, approvals, reach to small firms."""
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
    rows = conn.execute(stmt).all()
    percentiles = response_percentiles(conn, where, APP.c.institution_id)
    overdue = _overdue_by_institution(conn, where, deadline_days, today)
    out = []
    for r in rows:
        row: dict[str, Any] = {
            "institution_id": int(r.institution_id),
            "name": r.name,
            "kind": r.kind,
        }
        if int(r.firms) < MIN_CELL_FIRMS:
            row |= withheld(LEAGUE_FIGURES)
        else:
            p50, p90 = percentiles.get(r.institution_id, (None, None))
            late = overdue.get(int(r.institution_id), 0)
            row |= {
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
        out.append(row)
    return out


def _overdue_by_institution(
    conn: Connection, where: Sequence[ColumnElement[bool]], deadline_days: int, today: date
) -> dict[int, int]:
    """Applications answered after their deadline, or not at all with the deadline passed.

    Grouped by (institution, day submitted, day decided) in SQL, so the working-day arithmetic
    runs over at most a few thousand groups, not over every application.
    """
    submitted_day = date_sql(conn, APP.c.submitted_at).label("submitted_day")
    decided_day = date_sql(conn, APP.c.decided_at).label("decided_day")
    open_or_decided = APP.c.status.in_((SUBMITTED, APPROVED, REJECTED))
    stmt = (
        sa.select(APP.c.institution_id, submitted_day, decided_day, sa.func.count().label("n"))
        .where(*where, open_or_decided)
        .group_by(APP.c.institution_id, submitted_day, decided_day)
    )
    groups = conn.execute(stmt).all()
    if not groups:
        return {}
    due = deadline_offsets([_as_date(g.submitted_day) for g in groups], deadline_days)
    late: dict[int, int] = {}
    for group, deadline in zip(groups, due, strict=True):
        answered = None if group.decided_day is None else _as_date(group.decided_day)
        if (answered is not None and answered > deadline) or (
            answered is None and today > deadline
        ):
            key = int(group.institution_id)
            late[key] = late.get(key, 0) + int(group.n)
    return late


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
