"""The institutions' league table (action-plan item 68): speed, approvals, reach, deadlines.

Read from the statistics cube's institution cells (``stats_cube_by``): the counts and amounts
add up over months, the firms are the union of the months' bitmaps, the response times are
the months' values together, and the deadlines are applied to the per-day counts kept in each
cell (day submitted, day decided or none), so any period, deadline and "today" is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.registry.stats import cube
from services.registry.stats.cells import MIN_CELL_FIRMS, withheld
from services.registry.stats.filters import Filters
from services.registry.stats.measures import hour_percentiles, ratio
from services.registry.stats.tables import INST
from services.registry.stats.workdays import add_workdays, offset_workdays

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
COLUMNS = (
    "applications",
    "approved",
    "rejected",
    "approved_yuan",
    "small_micro_yuan",
    "first_loans",
    "applicant_firms",
    "response_hours",
    "day_counts",
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
    f = filters
    cells = cube.read(conn, f.date_from, f.date_to, f.town_code, f.category, "institution", COLUMNS)
    wanted = INST.c.id.in_([int(k) for k in cells])
    known = {
        str(r.id): r
        for r in conn.execute(sa.select(INST.c.id, INST.c.name, INST.c.kind).where(wanted))
    }
    out = []
    for key in sorted((k for k in cells if k in known), key=int):
        c, inst = cells[key], known[key]
        row: dict[str, Any] = {"institution_id": int(inst.id), "name": inst.name, "kind": inst.kind}
        if c.distinct("applicant_firms") < MIN_CELL_FIRMS:
            out.append(row | withheld(LEAGUE_FIGURES))
            continue
        p50, p90 = hour_percentiles(c.response_hours)
        late = overdue(c.day_counts, deadline_days, today)
        decided = c.approved + c.rejected
        out.append(
            row
            | {
                "applications": c.applications,
                "decided": decided,
                "approved": c.approved,
                "approval_rate": ratio(c.approved, decided),
                "response_hours_median": p50,
                "response_hours_p90": p90,
                "approved_amount_yuan": c.approved_yuan,
                "small_micro_approved_amount_yuan": c.small_micro_yuan,
                "first_loans": c.first_loans,
                "overdue": late,
                "overdue_share": ratio(late, c.applications),
                "suppressed": False,
            }
        )
    return out


def overdue(day_counts: np.ndarray, deadline_days: int, today: date) -> int:
    """Applications answered after their deadline, or not at all with the deadline passed.

    ``day_counts``: rows of (day submitted, day decided or ``cube.NO_DAY``, applications), in
    days since 1970; the deadlines are computed at once over the array.
    """
    if not len(day_counts):
        return 0
    submitted, decided, n = (day_counts[:, i].astype(np.int64) for i in range(3))
    due = offset_workdays(submitted.astype("datetime64[D]"), deadline_days).astype(np.int64)
    answered = decided != cube.NO_DAY
    now = np.datetime64(today, "D").astype(np.int64)
    late = (answered & (decided > due)) | (~answered & (now > due))
    return int(n[late].sum())
