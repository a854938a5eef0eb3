"""The statistics cube: officials' figures summed per China-time month, rebuilt when dirty.

Reading a year of a million applications row by row costs seconds; the cube answers from one
row per month and cell instead. A cell is the city, a town, a product category, or a town and
a category (``ALL`` in the other column). Counts and amounts add up across months. The two
kinds of figure that do not add up are kept whole, so that the answers stay exact:

- distinct firms (applicants, approved, first loans, matched) as Roaring bitmaps of firm ids:
  the firms of a period are the union of its months' bitmaps;
- response times (application → decision, hours) as the month's values themselves: the
  period's percentiles are taken over their concatenation.

A period that does not start or end on a month boundary reads its partial months from the
rows (the same builder, over the days only), so any period is answered, exactly.

Freshness: triggers (migration 0005) mark a month in ``stats_dirty`` on every write that can
change it; ``refresh`` rebuilds the dirty months before a query reads the cube. A rebuild
clears a mark only if its version is still the one it read first, so a write that lands
while a month is being rebuilt leaves the month dirty for the next query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from pyroaring import BitMap64
from sqlalchemy.engine import Connection, Engine

from services.registry.db import write_session
from services.registry.models.stats_cube import ALL, stats_cube, stats_dirty
from services.registry.stats.china_time import day_start, month_of, month_start, next_month
from services.registry.stats.measures import response_hours_sql
from services.registry.stats.tables import (
    APP,
    APPROVED,
    EVENT,
    FIRM,
    PROD,
    REJECTED,
    SMALL_AND_MICRO,
    SUBMITTED,
)

log = logging.getLogger(__name__)
# Any fixed number: the PostgreSQL advisory lock held while the cube is rebuilt.
REFRESH_LOCK = 0x66696E737461747300 >> 8  # "finstats"

COUNTS = (
    "applications",
    "approved",
    "rejected",
    "pending",
    "requested_yuan",
    "approved_yuan",
    "small_micro_yuan",
    "first_loans",
    "rate_bp_sum",
    "rate_bp_n",
    "firms_registered",
    "firms_with_need",
)
BITMAPS = ("applicant_firms", "approved_firms", "first_loan_firms", "matched_firms")
Key = tuple[str, str]  # (town code or ALL, category or ALL)


@dataclass
class Cell:
    """The figures of one cell over some months (or days)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    firms: dict[str, BitMap64] = field(default_factory=lambda: {b: BitMap64() for b in BITMAPS})
    response_hours: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __getattr__(self, name: str) -> int:
        try:
            return int(self.__dict__["counts"][name])
        except KeyError:
            raise AttributeError(name) from None

    def distinct(self, name: str) -> int:
        return len(self.firms[name])


def merge(cells: Iterable[Cell]) -> Cell:
    cells = list(cells)
    out = Cell()
    for name in COUNTS:
        out.counts[name] = sum(c.counts[name] for c in cells)
    for name in BITMAPS:
        maps = [c.firms[name] for c in cells if c.firms[name]]
        out.firms[name] = BitMap64.union(*maps) if maps else BitMap64()
    hours = [c.response_hours for c in cells if c.response_hours.size]
    out.response_hours = np.concatenate(hours) if hours else np.empty(0)
    return out


# --- periods -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """A period as whole months (read from the cube) and partial ones (read from the rows).

    ``first``/``last`` bound the whole months, inclusive; None leaves that side open.
    """

    first: str | None
    last: str | None
    edges: tuple[tuple[date, date], ...]  # [from, to) day ranges, each within one month

    def month_where(self, column: Any) -> list[Any]:
        where = []
        if self.first is not None:
            where.append(column >= self.first)
        if self.last is not None:
            where.append(column <= self.last)
        return where

    def empty(self) -> bool:
        """No whole month (the period may still have days)."""
        return self.first is not None and self.last is not None and self.first > self.last


def split(date_from: date | None, date_to: date | None) -> Split:
    """[date_from, date_to) as whole months plus the days of the months it cuts."""
    if date_from is not None and date_to is not None and date_from >= date_to:
        return Split(first="9999-12", last="0000-01", edges=())
    edges: list[tuple[date, date]] = []
    first = last = None
    if date_from is not None:
        start = date_from if date_from.day == 1 else next_month(date_from)
        if start != date_from:
            edges.append((date_from, start if date_to is None else min(start, date_to)))
        first = month_of(start)
    if date_to is not None:
        end = date_to.replace(day=1)
        if end != date_to and (date_from is None or end >= date_from):
            edges.append((max(end, date_from) if date_from else end, date_to))
        last = month_of(end - timedelta(days=1))
    # A period inside one month: one edge, no whole month.
    unique = tuple(sorted(set(edges)))
    return Split(first=first, last=last, edges=unique)


# --- building cells from the rows ----------------------------------------------------------


def _groups(
    towns: np.ndarray, cats: np.ndarray, mask: np.ndarray | None = None
) -> Iterable[tuple[Key, np.ndarray]]:
    """(key, row indices) for every cell of every level."""
    n = len(towns)
    index = np.arange(n)
    has_cat = np.array([c is not None for c in cats], dtype=bool)
    specs = [
        (np.full(n, ALL, dtype=object), np.full(n, ALL, dtype=object), index),
        (towns, np.full(n, ALL, dtype=object), index),
        (np.full(n, ALL, dtype=object), cats, index[has_cat]),
        (towns, cats, index[has_cat]),
    ]
    for town_key, cat_key, rows in specs:
        if not len(rows):
            continue
        composite = np.array(
            [f"{t}|{c}" for t, c in zip(town_key[rows], cat_key[rows], strict=True)]
        )
        labels, inverse = np.unique(composite, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(labels) + 1))
        for g, label in enumerate(labels):
            t, c = str(label).split("|", 1)
            yield (t, c), rows[order[bounds[g] : bounds[g + 1]]]


def build(
    conn: Connection,
    start: date,
    end: date,
    town_code: str | None = None,
    category: str | None = None,
) -> dict[Key, Cell]:
    """Every cell of [start, end) (China-time days) straight from the rows."""
    lo, hi = day_start(start), day_start(end)
    cells: dict[Key, Cell] = {}

    def cell(key: Key) -> Cell:
        return cells.setdefault(key, Cell())

    app_where = [APP.c.submitted_at >= lo, APP.c.submitted_at < hi]
    event_where = [EVENT.c.created_at >= lo, EVENT.c.created_at < hi]
    if town_code is not None:
        app_where.append(APP.c.town_code == town_code)
        event_where.append(EVENT.c.town_code == town_code)
    if category is not None:
        app_where.append(PROD.c.category == category)
        event_where.append(PROD.c.category == category)
    rows = conn.execute(
        sa.select(
            APP.c.firm_id,
            APP.c.town_code,
            PROD.c.category,
            APP.c.status,
            APP.c.is_first_loan,
            APP.c.size_class,
            APP.c.requested_amount_yuan,
            APP.c.approved_amount_yuan,
            APP.c.approved_rate_bp,
            sa.case(
                (
                    sa.and_(APP.c.decided_at.is_not(None), APP.c.status.in_((APPROVED, REJECTED))),
                    response_hours_sql(conn),
                )
            ),
        )
        .select_from(APP.outerjoin(PROD, PROD.c.id == APP.c.product_id))
        .where(*app_where)
    ).all()
    if rows:
        firm, town, cat, status, first, size, requested, amount, rate, hours = (
            np.array(col, dtype=object) for col in zip(*rows, strict=True)
        )
        approved = status == APPROVED
        counted = {
            "approved": approved,
            "rejected": status == REJECTED,
            "pending": status == SUBMITTED,
            "first_loans": approved & (first == True),  # noqa: E712 (an object array)
        }
        small_micro = approved & np.isin(size, SMALL_AND_MICRO)
        approved_amount = np.where(approved & (amount != None), amount, 0).astype(np.int64)  # noqa: E711
        rated = approved & (rate != None)  # noqa: E711
        requested_i = requested.astype(np.int64)
        rate_i = np.where(rated, rate, 0).astype(np.int64)
        has_firm = firm != None  # noqa: E711
        firm_i = np.where(has_firm, firm, 0).astype(np.uint64)
        decided = hours != None  # noqa: E711
        hours_f = np.where(decided, hours, 0.0).astype(np.float64)
        for key, idx in _groups(town, cat):
            c = cell(key)
            c.counts["applications"] += len(idx)
            for name, mask in counted.items():
                c.counts[name] += int(mask[idx].sum())
            c.counts["requested_yuan"] += int(requested_i[idx].sum())
            c.counts["approved_yuan"] += int(approved_amount[idx].sum())
            c.counts["small_micro_yuan"] += int(approved_amount[idx][small_micro[idx]].sum())
            c.counts["rate_bp_sum"] += int(rate_i[idx].sum())
            c.counts["rate_bp_n"] += int(rated[idx].sum())
            with_firm = idx[has_firm[idx]]
            c.firms["applicant_firms"] |= BitMap64(firm_i[with_firm])
            c.firms["approved_firms"] |= BitMap64(firm_i[with_firm[approved[with_firm]]])
            first_loan = with_firm[counted["first_loans"][with_firm]]
            c.firms["first_loan_firms"] |= BitMap64(firm_i[first_loan])
            c.response_hours = np.concatenate([c.response_hours, hours_f[idx[decided[idx]]]])
    events = conn.execute(
        sa.select(EVENT.c.firm_id, EVENT.c.town_code, PROD.c.category)
        .select_from(EVENT.outerjoin(PROD, PROD.c.id == EVENT.c.product_id))
        .where(*event_where, EVENT.c.firm_id.is_not(None))
        .distinct()
    ).all()
    if events:
        e_firm, e_town, e_cat = (np.array(col, dtype=object) for col in zip(*events, strict=True))
        e_firm_i = e_firm.astype(np.uint64)
        for key, idx in _groups(e_town, e_cat):
            cell(key).firms["matched_firms"] |= BitMap64(e_firm_i[idx])
    if category is None:
        firm_where = [FIRM.c.created_at >= lo, FIRM.c.created_at < hi]
        if town_code is not None:
            firm_where.append(FIRM.c.town_code == town_code)
        need = FIRM.c.need_amount_yuan.is_not(None)
        registered = conn.execute(
            sa.select(FIRM.c.town_code, need.label("need"), sa.func.count().label("n"))
            .where(*firm_where)
            .group_by(FIRM.c.town_code, need)
        ).all()
        for town_key, has_need, n in registered:
            for key in ((ALL, ALL), (town_key, ALL)):
                c = cell(key)
                c.counts["firms_registered"] += int(n)
                if has_need:
                    c.counts["firms_with_need"] += int(n)
    return cells


# --- the stored cube -----------------------------------------------------------------------


def _row(month: str, key: Key, cell: Cell) -> dict[str, Any]:
    return {
        "month": month,
        "town_code": key[0],
        "category": key[1],
        **cell.counts,
        **{name: cell.firms[name].serialize() for name in BITMAPS},
        "response_hours": cell.response_hours.astype("<f8").tobytes(),
    }


def _cell(row: Any, columns: Sequence[str]) -> Cell:
    c = Cell()
    for name in columns:
        value = getattr(row, name)
        if name in BITMAPS:
            c.firms[name] = BitMap64.deserialize(value)
        elif name == "response_hours":
            c.response_hours = np.frombuffer(value, dtype="<f8")
        else:
            c.counts[name] = int(value)
    return c


def refresh(engine: Engine) -> int:
    """Rebuild the dirty months, one transaction each; return how many were rebuilt."""
    with engine.connect() as conn:
        dirty = conn.execute(sa.select(stats_dirty.c.month).order_by(stats_dirty.c.month)).all()
    rebuilt = 0
    started = time.perf_counter()
    for (month,) in dirty:
        with write_session(engine) as session, session.begin():
            conn = session.connection()
            if conn.dialect.name == "postgresql":
                # One rebuilder at a time; whoever waited finds the month already clean.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": REFRESH_LOCK})
            version = conn.execute(
                sa.select(stats_dirty.c.version).where(stats_dirty.c.month == month)
            ).scalar_one_or_none()
            if version is None:
                continue
            start = month_start(month)
            cells = build(conn, start, next_month(start))
            conn.execute(sa.delete(stats_cube).where(stats_cube.c.month == month))
            if cells:
                conn.execute(sa.insert(stats_cube), [_row(month, k, c) for k, c in cells.items()])
            # Cleared only if no write has marked the month again since ``version`` was read.
            conn.execute(
                sa.delete(stats_dirty).where(
                    stats_dirty.c.month == month, stats_dirty.c.version == version
                )
            )
            rebuilt += 1
    if rebuilt:
        log.info(
            "statistics cube: %d month(s) rebuilt in %.0f ms",
            rebuilt,
            (time.perf_counter() - started) * 1000,
        )
    return rebuilt


def read(
    conn: Connection,
    date_from: date | None,
    date_to: date | None,
    town_code: str | None,
    category: str | None,
    by: str | None,
    columns: Sequence[str],
) -> dict[str, Cell]:
    """The period's cells, merged per ``by`` ('town', 'category', 'month' or None → one '')."""
    period = split(date_from, date_to)
    cube = stats_cube.c
    where = period.month_where(cube.month)
    if by == "town":
        where.append(cube.town_code != ALL if town_code is None else cube.town_code == town_code)
    else:
        where.append(cube.town_code == (town_code or ALL))
    if by == "category":
        where.append(cube.category != ALL if category is None else cube.category == category)
    else:
        where.append(cube.category == (category or ALL))
    parts: dict[str, list[Cell]] = {}

    def key_of(month: str, town: str, cat: str) -> str:
        return {"town": town, "category": cat, "month": month}.get(by or "", "")

    stmt = sa.select(cube.month, cube.town_code, cube.category, *(cube[c] for c in columns))
    for row in [] if period.empty() else conn.execute(stmt.where(*where)):
        parts.setdefault(key_of(row.month, row.town_code, row.category), []).append(
            _cell(row, columns)
        )
    for start, end in period.edges:
        for (town, cat), edge_cell in build(conn, start, end, town_code, category).items():
            if not _wanted(town, town_code, by == "town") or not _wanted(
                cat, category, by == "category"
            ):
                continue
            parts.setdefault(key_of(month_of(start), town, cat), []).append(edge_cell)
    return {k: merge(v) for k, v in parts.items()}


def _wanted(value: str, chosen: str | None, broken_down: bool) -> bool:
    """Whether an edge cell's town (or category) belongs to the answer."""
    if broken_down:
        return value != ALL and (chosen is None or value == chosen)
    return value == (chosen or ALL)


def registered_by(conn: Connection, date_to: date | None, town_code: str | None) -> Cell:
    """Firms registered before ``date_to`` (all of them when None), from the cube and rows."""
    return read(
        conn, None, date_to, town_code, None, None, ("firms_registered", "firms_with_need")
    ).get("", Cell())
