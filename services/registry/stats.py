"""Officials' statistics as SQL aggregates over applications, firms and match events.

Every figure is computed from the rows themselves (no counters kept on the side), so a figure
can always be traced back to the records behind it. On PostgreSQL the application and match
event aggregates are index-only scans (ix_application_stats, ix_match_event_at); percentiles use
``percentile_cont``. SQLite has no percentile function: there the durations are read and the
percentiles computed in NumPy, which is fine at the embedded default's scale.

Privacy: a breakdown cell drawn from fewer than ``MIN_CELL_FIRMS`` distinct firms is
suppressed (its figures are None), so no single firm can be picked out of a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timezone
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from services.registry import stats_cube as cube
from services.registry.models import Application, Firm, Institution, MatchEvent, Product
from services.registry.models.columns import table_of
from shared.enums import ApplicationStatus
from shared.schemas.stats import Dimension
from shared.vocab.labels import category_label, section_label, size_class_label, town_label
from shared.vocab.size_class import SizeClass

APP = table_of(Application)
FIRM = table_of(Firm)
PROD = table_of(Product)
INST = table_of(Institution)
EVENT = table_of(MatchEvent)

MIN_CELL_FIRMS = 3
SMALL_AND_MICRO = (SizeClass.SMALL.value, SizeClass.MICRO.value)
APPROVED = ApplicationStatus.APPROVED.value
REJECTED = ApplicationStatus.REJECTED.value
SUBMITTED = ApplicationStatus.SUBMITTED.value


@dataclass(frozen=True)
class Filters:
    """What every statistics query narrows by: a period [date_from, date_to), a town, a category.

    The period is in China time (UTC+8): a day is the day an official sees on the calendar.
    """

    date_from: date | None = None
    date_to: date | None = None
    town_code: str | None = None
    category: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "date_from": None if self.date_from is None else self.date_from.isoformat(),
            "date_to": None if self.date_to is None else self.date_to.isoformat(),
            "town_code": self.town_code,
            "category": self.category,
        }


CHINA_TZ = timezone(cube.CHINA)
day_start = cube.instant  # 00:00 China time of a day, in UTC


def _period(column: Any, filters: Filters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.date_from is not None:
        where.append(column >= day_start(filters.date_from))
    if filters.date_to is not None:
        where.append(column < day_start(filters.date_to))
    return where


def _in_category(product_column: Any, category: str) -> ColumnElement[bool]:
    result: ColumnElement[bool] = product_column.in_(
        sa.select(PROD.c.id).where(PROD.c.category == category).scalar_subquery()
    )
    return result


def application_where(filters: Filters) -> list[ColumnElement[bool]]:
    where = _period(APP.c.submitted_at, filters)
    if filters.town_code is not None:
        where.append(APP.c.town_code == filters.town_code)
    if filters.category is not None:
        where.append(_in_category(APP.c.product_id, filters.category))
    return where


def _count_if(condition: ColumnElement[bool]) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _sum_if(condition: ColumnElement[bool], value: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)


def _application_measures(*, firms: bool = True) -> list[Any]:
    status = APP.c.status
    approved = status == APPROVED
    distinct_firms = [sa.func.count(sa.distinct(APP.c.firm_id)).label("firms")] if firms else []
    return [
        sa.func.count().label("applications"),
        *distinct_firms,
        _count_if(approved).label("approved"),
        _count_if(status == REJECTED).label("rejected"),
        _count_if(status == SUBMITTED).label("pending"),
        sa.func.coalesce(sa.func.sum(APP.c.requested_amount_yuan), 0).label("requested"),
        _sum_if(approved, APP.c.approved_amount_yuan).label("approved_amount"),
        _sum_if(
            sa.and_(approved, APP.c.size_class.in_(SMALL_AND_MICRO)), APP.c.approved_amount_yuan
        ).label("small_micro_amount"),
        _count_if(sa.and_(approved, APP.c.is_first_loan)).label("first_loans"),
        # FILTER, not a CASE inside DISTINCT: only the matching rows are sorted.
        sa.func.count(sa.distinct(APP.c.firm_id))
        .filter(sa.and_(approved, APP.c.is_first_loan))
        .label("first_loan_firms"),
        sa.func.count(sa.distinct(APP.c.firm_id)).filter(approved).label("approved_firms"),
        sa.func.avg(sa.case((approved, APP.c.approved_rate_bp))).label("avg_rate_bp"),
    ]


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else round(numerator / denominator, 4)


def response_percentiles(
    conn: Connection, where: Sequence[ColumnElement[bool]], group: Any = None
) -> dict[Any, tuple[float | None, float | None]]:
    """Median and 90th percentile of response hours, per ``group`` value (or under None)."""
    decided = [*where, APP.c.decided_at.is_not(None), APP.c.status.in_((APPROVED, REJECTED))]
    hours = cube.response_hours_sql(conn)
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
            row.key: (_round(row.p50), _round(row.p90)) for row in conn.execute(stmt) if row.p50
        }
    rows = conn.execute(sa.select(key.label("key"), hours.label("h")).where(*decided)).all()
    by_key: dict[Any, list[float]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(float(row.h))
    return {
        k: (
            _round(float(np.percentile(v, 50, method="linear"))),
            _round(float(np.percentile(v, 90, method="linear"))),
        )
        for k, v in by_key.items()
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def roomy(conn: Connection) -> None:
    """Give this transaction's sorts and hashes room (PostgreSQL's 4 MB default spills)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))


def overview(conn: Connection, filters: Filters) -> dict[str, Any]:
    """The period's headline figures, from the statistics cube (see stats_cube)."""
    f = filters
    c = cube.read(conn, f.date_from, f.date_to, f.town_code, f.category, None, OVERVIEW).get(
        "", cube.Cell()
    )
    registered = cube.registered_by(conn, f.date_to, f.town_code)
    decided = c.approved + c.rejected
    hours = c.response_hours
    p50, p90 = (
        (_round(float(np.percentile(hours, 50))), _round(float(np.percentile(hours, 90))))
        if hours.size
        else (None, None)
    )
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
        "approval_rate": _ratio(c.approved, decided),
        "requested_amount_yuan": c.requested_yuan,
        "approved_amount_yuan": c.approved_yuan,
        "first_loan_firms": first_loan_firms,
        "first_loan_rate": _ratio(first_loan_firms, approved_firms),
        "small_micro_share_of_approved": _ratio(c.small_micro_yuan, c.approved_yuan),
        "response_hours_median": p50,
        "response_hours_p90": p90,
        "average_approved_rate_bp": _round(c.rate_bp_sum / c.rate_bp_n) if c.rate_bp_n else None,
    }


OVERVIEW = (
    *cube.COUNTS[:10],
    "approved_firms",
    "first_loan_firms",
    "matched_firms",
    "response_hours",
)
BREAKDOWN = (*cube.COUNTS[:8], "applicant_firms")
CUBE_DIMENSIONS = {"town", "category", "month"}


def overview_from_rows(conn: Connection, filters: Filters) -> dict[str, Any]:
    """``overview`` computed straight from the rows: the definition the cube must match."""
    roomy(conn)
    firms_where: list[ColumnElement[bool]] = []
    if filters.date_to is not None:  # registered by the end of the period
        firms_where.append(FIRM.c.created_at < day_start(filters.date_to))
    if filters.town_code is not None:
        firms_where.append(FIRM.c.town_code == filters.town_code)
    firms = conn.execute(
        sa.select(
            sa.func.count().label("firms"),
            _count_if(FIRM.c.need_amount_yuan.is_not(None)).label("with_need"),
        ).where(*firms_where)
    ).one()
    matched_where = _period(EVENT.c.created_at, filters)
    if filters.town_code is not None:
        matched_where.append(EVENT.c.town_code == filters.town_code)
    if filters.category is not None:
        matched_where.append(_in_category(EVENT.c.product_id, filters.category))
    matched = conn.execute(
        sa.select(sa.func.count(sa.distinct(EVENT.c.firm_id))).where(*matched_where)
    ).scalar_one()
    where = application_where(filters)
    a = conn.execute(sa.select(*_application_measures(firms=False)).where(*where)).one()
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
        "approval_rate": _ratio(int(a.approved), decided),
        "requested_amount_yuan": int(a.requested),
        "approved_amount_yuan": int(a.approved_amount),
        "first_loan_firms": int(a.first_loan_firms),
        "first_loan_rate": _ratio(int(a.first_loan_firms), int(a.approved_firms)),
        "small_micro_share_of_approved": _ratio(int(a.small_micro_amount), int(a.approved_amount)),
        "response_hours_median": p50,
        "response_hours_p90": p90,
        "average_approved_rate_bp": _round(a.avg_rate_bp),
    }


def _month_key(conn: Connection, column: Any) -> Any:
    # Months in China time, like the period filter.
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("Asia/Shanghai", column), "YYYY-MM")
    return sa.func.strftime("%Y-%m", column, "+8 hours")


def _labels(conn: Connection, by: Dimension, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
    if by is Dimension.TOWN:
        return {k: town_label(k) for k in keys}
    if by is Dimension.CATEGORY:
        return {k: category_label(k) for k in keys}
    if by is Dimension.SIZE_CLASS:
        return {k: size_class_label(k) for k in keys}
    if by is Dimension.INDUSTRY:
        return {k: section_label(k) for k in keys}
    if by is Dimension.INSTITUTION:
        names: dict[str, str] = {
            str(i): str(n) for i, n in conn.execute(sa.select(INST.c.id, INST.c.name))
        }
        return {k: (names.get(k, k), names.get(k, k)) for k in keys}
    return {k: (k, k) for k in keys}


def breakdown(conn: Connection, by: Dimension, filters: Filters) -> list[dict[str, Any]]:
    """Application figures per town, category, institution, size class, section or month.

    Town, category and month come from the statistics cube; the others from the rows.
    """
    if by.value not in CUBE_DIMENSIONS:
        return breakdown_from_rows(conn, by, filters)
    f = filters
    cells = cube.read(conn, f.date_from, f.date_to, f.town_code, f.category, by.value, BREAKDOWN)
    labels = _labels(conn, by, cells)
    out = []
    for key in sorted(cells):
        c = cells[key]
        if not c.applications:  # a month or town with registrations or matches only
            continue
        zh, en = labels[key]
        out.append(
            _breakdown_cell(
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


def _breakdown_cell(key: str, zh: str, en: str, **n: int) -> dict[str, Any]:
    cell: dict[str, Any] = {"key": key, "label_zh": zh, "label_en": en}
    if n["firms"] < MIN_CELL_FIRMS:
        return cell | dict.fromkeys(BREAKDOWN_FIGURES) | {"suppressed": True}
    return cell | {
        "firms": n["firms"],
        "applications": n["applications"],
        "approved": n["approved"],
        "rejected": n["rejected"],
        "pending": n["pending"],
        "approval_rate": _ratio(n["approved"], n["approved"] + n["rejected"]),
        "requested_amount_yuan": n["requested"],
        "approved_amount_yuan": n["approved_amount"],
        "first_loan_approved": n["first_loans"],
        "suppressed": False,
    }


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
        Dimension.MONTH: _month_key(conn, APP.c.submitted_at),
    }[by].label("key")
    stmt = (
        sa.select(key, *_application_measures())
        .select_from(source)
        .where(*application_where(filters))
        .group_by(key)
        .order_by(key)
    )
    rows = conn.execute(stmt).all()
    labels = _labels(conn, by, (str(r.key) for r in rows))
    return [
        _breakdown_cell(
            str(r.key),
            *labels[str(r.key)],
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


BREAKDOWN_FIGURES = (
    "firms",
    "applications",
    "approved",
    "rejected",
    "pending",
    "approval_rate",
    "requested_amount_yuan",
    "approved_amount_yuan",
    "first_loan_approved",
)


def deadline_offsets(submitted: Sequence[date], working_days: int) -> list[date]:
    """The day by which an answer is due: ``working_days`` Monday–Friday days after submission.

    Public holidays are not modelled (the State Council's calendar changes every year); a
    holiday week makes the deadline stricter than it really is, never laxer.
    """
    due = np.busday_offset(np.array(submitted, dtype="datetime64[D]"), working_days, roll="forward")
    return [d.astype(date) for d in due]


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
            _count_if(APP.c.status.in_((APPROVED, REJECTED))).label("decided"),
            _count_if(approved).label("approved"),
            _sum_if(approved, APP.c.approved_amount_yuan).label("approved_amount"),
            _sum_if(
                sa.and_(approved, APP.c.size_class.in_(SMALL_AND_MICRO)),
                APP.c.approved_amount_yuan,
            ).label("small_micro_amount"),
            _count_if(sa.and_(approved, APP.c.is_first_loan)).label("first_loans"),
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
            row |= dict.fromkeys(LEAGUE_FIGURES) | {"suppressed": True}
        else:
            p50, p90 = percentiles.get(r.institution_id, (None, None))
            late = overdue.get(int(r.institution_id), 0)
            row |= {
                "applications": int(r.applications),
                "decided": int(r.decided),
                "approved": int(r.approved),
                "approval_rate": _ratio(int(r.approved), int(r.decided)),
                "response_hours_median": p50,
                "response_hours_p90": p90,
                "approved_amount_yuan": int(r.approved_amount),
                "small_micro_approved_amount_yuan": int(r.small_micro_amount),
                "first_loans": int(r.first_loans),
                "overdue": late,
                "overdue_share": _ratio(late, int(r.applications)),
                "suppressed": False,
            }
        out.append(row)
    return out


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


def _china_date(conn: Connection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("Asia/Shanghai", column), sa.Date)
    return sa.func.date(column, "+8 hours")


def _overdue_by_institution(
    conn: Connection, where: Sequence[ColumnElement[bool]], deadline_days: int, today: date
) -> dict[int, int]:
    """Applications answered after their deadline, or not at all with the deadline passed.

    Grouped by (institution, day submitted, day decided) in SQL, so the working-day arithmetic
    runs over at most a few thousand groups, not over every application.
    """
    submitted_day = _china_date(conn, APP.c.submitted_at).label("submitted_day")
    decided_day = _china_date(conn, APP.c.decided_at).label("decided_day")
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


def matched_without_application(conn: Connection, filters: Filters) -> list[dict[str, Any]]:
    """Per town and section: firms shown matches in the period, and those that never applied."""
    event_where = _period(EVENT.c.created_at, filters)
    if filters.category is not None:
        event_where.append(_in_category(EVENT.c.product_id, filters.category))
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
            _count_if(~applied).label("without_application"),
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
    row = conn.execute(
        sa.select(
            sa.func.count().label("firms"),
            _count_if(FIRM.c.need_amount_yuan.is_not(None)).label("with_need"),
        ).where(*where)
    ).one()
    return int(row.firms), int(row.with_need)


def category_amounts(conn: Connection, filters: Filters) -> dict[str, dict[str, int]]:
    """Approved amount per category: in all, and to small and micro firms (and agriculture)."""
    approved = APP.c.status == APPROVED
    stmt = (
        sa.select(
            PROD.c.category,
            _sum_if(approved, APP.c.approved_amount_yuan).label("approved"),
            _sum_if(
                sa.and_(approved, APP.c.size_class.in_(SMALL_AND_MICRO)),
                APP.c.approved_amount_yuan,
            ).label("small_micro"),
            _sum_if(
                sa.and_(
                    approved,
                    sa.or_(APP.c.size_class.in_(SMALL_AND_MICRO), APP.c.industry_section == "A"),
                ),
                APP.c.approved_amount_yuan,
            ).label("small_micro_or_agri"),
            _sum_if(
                sa.and_(approved, APP.c.size_class != SizeClass.LARGE.value),
                APP.c.approved_amount_yuan,
            ).label("sme"),
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


def firms_by_size(conn: Connection, town_code: str | None) -> dict[str, dict[str, int]]:
    where = [] if town_code is None else [FIRM.c.town_code == town_code]
    stmt = (
        sa.select(
            FIRM.c.size_class,
            sa.func.count().label("firms"),
            _count_if(FIRM.c.need_amount_yuan.is_not(None)).label("with_need"),
        )
        .where(*where)
        .group_by(FIRM.c.size_class)
    )
    return {
        r.size_class: {"firms": int(r.firms), "with_need": int(r.with_need)}
        for r in conn.execute(stmt)
    }
