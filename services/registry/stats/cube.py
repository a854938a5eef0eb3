"""The statistics cube: officials' figures summed per China-time month, built from the rows.

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

Freshness (stats/refresh.py): a small write is logged by triggers (migration 0019) and applied
to the cells it touches (stats/delta.py); a bulk write, a product's new category or a TRUNCATE
marks its months in ``stats_dirty``, and those are rebuilt here from the rows (``build``,
``store``) before a query reads the cube.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from pyroaring import BitMap64
from sqlalchemy.engine import Connection

from services.registry.models.stats_cube import (
    ALL,
    BY_DIMENSIONS,
    PRODUCT,
    product_key,
    stats_cube,
    stats_cube_by,
)
from services.registry.stats.china_time import (
    date_sql,
    day_start,
    month_of,
    next_month,
)
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
from shared.vocab.size_class import SizeClass

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
    "small_micro_or_agri_yuan",
    "sme_yuan",
    "eligible",
    "ineligible",
    "unknown",
)
BITMAPS = ("applicant_firms", "approved_firms", "first_loan_firms", "matched_firms")
ELIGIBILITY = ("eligible", "ineligible", "unknown")  # an application's eligibility_status
# (dimension or '', its value or '', town code or ALL, category or ALL)
Key = tuple[str, str, str, str]


@dataclass
class Cell:
    """The figures of one cell over some months (or days)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    # Made when first used: a month has thousands of cells, each with a few bitmaps at most.
    firms: defaultdict[str, BitMap64] = field(default_factory=lambda: defaultdict(BitMap64))
    response_hours: np.ndarray = field(default_factory=lambda: np.empty(0))
    # (day submitted, day decided or NO_DAY, applications): institution cells only.
    day_counts: np.ndarray = field(default_factory=lambda: np.empty((0, 3), dtype=np.int32))

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
    days = [c.day_counts for c in cells if len(c.day_counts)]
    if days:
        out.day_counts = np.concatenate(days)
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

# The cells of every month: (dimension, its value, town, category), '' and ALL where unused.
# The plain cube's cells have no dimension; stats_cube_by's have one of BY_DIMENSIONS, or are
# a product's (the city and each town only: a product has one category, so a category filter
# is the choice of products, made when the cells are read).
LEVELS: tuple[tuple[str, bool, bool], ...] = (
    *(
        (dimension, by_town, by_category)
        for dimension in ("", *BY_DIMENSIONS)
        for by_town in (False, True)
        for by_category in (False, True)
    ),
    (PRODUCT, False, False),
    (PRODUCT, True, False),
)
NO_DAY = np.iinfo(np.int32).min  # day_counts' decided day of an open application
# stats_cube_by's cells of the firms registered in the month, by their town and section now
# (key: the section; applicant_firms: the firms), which coverage groups matched firms by.
REGISTERED = "registered"


@dataclass(frozen=True)
class Coded:
    """A column of labels as small integer codes (np.unique's), so groups are integer sorts."""

    codes: np.ndarray
    labels: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> Coded:
        labels, codes = np.unique(values.astype(str), return_inverse=True)
        return cls(codes.astype(np.int64), labels)

    @classmethod
    def products(cls, product: np.ndarray, institution: np.ndarray) -> Coded:
        """Each row's product cell key (``product_key``), coded on integers: the strings are
        made once per product, not once per row."""
        pairs = (product.astype(np.int64) << 32) | institution.astype(np.int64)
        unique, codes = np.unique(pairs, return_inverse=True)
        labels = np.array([product_key(int(u) >> 32, int(u) & 0xFFFFFFFF) for u in unique])
        return cls(codes.astype(np.int64), labels)


@dataclass(frozen=True)
class Groups:
    """Rows sorted by group: ``order`` (row indices), each group's ``starts``, and its key."""

    order: np.ndarray
    starts: np.ndarray
    keys: list[tuple[str, ...]]

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Each group's sum of ``values`` (int64, exact)."""
        return np.add.reduceat(values[self.order], self.starts)

    def slices(self) -> Iterable[tuple[int, slice]]:
        ends = [*self.starts[1:], len(self.order)]
        for g, (start, end) in enumerate(zip(self.starts, ends, strict=True)):
            yield g, slice(int(start), int(end))


def group(columns: Sequence[Coded], rows: np.ndarray) -> Groups | None:
    """The rows ``rows`` grouped by the distinct combinations of ``columns``' values."""
    if not len(rows):
        return None
    combined = np.zeros(len(rows), dtype=np.int64)
    for column in columns:
        combined = combined * len(column.labels) + column.codes[rows]
    unique, inverse = np.unique(combined, return_inverse=True)
    sort = np.argsort(inverse, kind="stable")
    order = rows[sort]
    starts = np.searchsorted(inverse[sort], np.arange(len(unique)))
    first = order[starts]
    labels = [c.labels[c.codes[first]].tolist() for c in columns]
    keys: list[tuple[str, ...]] = list(zip(*labels, strict=True)) if labels else [()] * len(starts)
    return Groups(order, starts, keys)


def level_groups(
    dimension: str, by_town: bool, by_category: bool, coded: dict[str, Coded], has_cat: np.ndarray
) -> tuple[list[str], Groups | None]:
    """The groups of one level, and which of (dimension, town, category) its keys give."""
    names = [n for n, used in ((dimension, bool(dimension)), ("town", by_town)) if used]
    if by_category:
        names.append("category")
    rows = np.flatnonzero(has_cat) if by_category else np.arange(len(has_cat))
    return names, group([coded[n] for n in names], rows)


def full_key(dimension: str, names: list[str], key: tuple[str, ...]) -> Key:
    value = dict(zip(names, key, strict=True))
    return (
        dimension,
        value.get(dimension, ""),
        value.get("town", ALL),
        value.get("category", ALL),
    )


def _days(values: np.ndarray) -> np.ndarray:
    """China-time days (dates or ISO strings, None for none) as int32 days since 1970."""
    days = np.array([None if v is None else str(v) for v in values], dtype="datetime64[D]")
    out = days.astype(np.int64)
    out[np.isnat(days)] = NO_DAY
    return out.astype(np.int32)


def day_counts(
    groups: Groups, in_scope: np.ndarray, submitted: np.ndarray, decided: np.ndarray
) -> dict[int, np.ndarray]:
    """Per group: (day submitted, day decided or NO_DAY, applications) of its open or
    decided applications, the league table's deadline counts."""
    sizes = np.diff([*groups.starts, len(groups.order)])
    g = np.repeat(np.arange(len(groups.starts), dtype=np.int64), sizes)
    keep = in_scope[groups.order]
    if not keep.any():
        return {}
    s_day = submitted[groups.order][keep].astype(np.int64)
    d_day = decided[groups.order][keep].astype(np.int64)
    base = int(s_day.min())
    # One int64 per (group, day submitted, day decided): 24 bits for each day, 0 for none.
    d_rel = np.where(d_day == NO_DAY, 0, d_day - base + 1)
    if len(d_rel) and (int(d_rel.min()) < 0 or int(d_rel.max()) >= 1 << 24):
        raise ValueError("a decision more than 45,000 years away from its application")
    packed = (g[keep] << 48) | ((s_day - base) << 24) | d_rel
    unique, counts = np.unique(packed, return_counts=True)
    group_of = unique >> 48
    s_out = ((unique >> 24) & 0xFFFFFF) + base
    d_bits = unique & 0xFFFFFF
    d_out = np.where(d_bits == 0, NO_DAY, d_bits - 1 + base)
    table = np.column_stack([s_out, d_out, counts]).astype(np.int32)
    bounds = np.searchsorted(group_of, np.arange(len(groups.starts) + 1))
    return {
        index: table[bounds[index] : bounds[index + 1]]
        for index in range(len(groups.starts))
        if bounds[index + 1] > bounds[index]
    }


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
    cell = adder(cells)
    app_where = [APP.c.submitted_at >= lo, APP.c.submitted_at < hi]
    event_where = [EVENT.c.created_at >= lo, EVENT.c.created_at < hi]
    if town_code is not None:
        app_where.append(APP.c.town_code == town_code)
        event_where.append(EVENT.c.town_code == town_code)
    if category is not None:
        app_where.append(PROD.c.category == category)
        event_where.append(PROD.c.category == category)
    rows = application_rows(conn, APP, app_where)
    if rows:
        add_applications(cell, rows)
    events = event_rows(conn, EVENT, event_where)
    if events:
        add_events(cell, events)
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
        add_firm_counts(cell, registered)
        firms = conn.execute(
            sa.select(FIRM.c.town_code, FIRM.c.industry_section, FIRM.c.id).where(*firm_where)
        ).all()
        if firms:
            add_registered(cell, firms)
    return cells


def adder(cells: dict[Key, Cell]) -> Callable[[Key], Cell]:
    """``cells``' cell of a key, made empty when first asked for."""

    def cell(key: Key) -> Cell:
        return cells.setdefault(key, Cell())

    return cell


def application_rows(conn: Connection, source: sa.Table, where: Sequence[Any]) -> Sequence[Any]:
    """The columns ``add_applications`` sums, of ``source``: the application table, or its
    change log (the same column names)."""
    app = source.c
    return conn.execute(
        sa.select(
            app.firm_id,
            app.town_code,
            PROD.c.category,
            app.status,
            app.is_first_loan,
            app.size_class,
            app.industry_section,
            app.institution_id,
            app.product_id,
            app.eligibility_status,
            app.requested_amount_yuan,
            app.approved_amount_yuan,
            app.approved_rate_bp,
            sa.case(
                (
                    sa.and_(app.decided_at.is_not(None), app.status.in_((APPROVED, REJECTED))),
                    response_hours_sql(conn, source),
                )
            ),
            date_sql(conn, app.submitted_at),
            date_sql(conn, app.decided_at),
        )
        .select_from(source.outerjoin(PROD, PROD.c.id == app.product_id))
        .where(*where)
    ).all()


def event_rows(conn: Connection, source: sa.Table, where: Sequence[Any]) -> Sequence[Any]:
    """(firm, town, category) of ``source``'s match events with a firm, each once."""
    event = source.c
    return conn.execute(
        sa.select(event.firm_id, event.town_code, PROD.c.category)
        .select_from(source.outerjoin(PROD, PROD.c.id == event.product_id))
        .where(*where, event.firm_id.is_not(None))
        .distinct()
    ).all()


def add_events(cell: Callable[[Key], Cell], events: Sequence[Any]) -> None:
    """The matched firms of ``events`` (event_rows') into the plain cube's cells."""
    e_firm, e_town, e_cat = (np.array(col, dtype=object) for col in zip(*events, strict=True))
    e_firm_i = e_firm.astype(np.uint64)
    coded = {"town": Coded.of(e_town), "category": Coded.of(e_cat)}
    e_has_cat = e_cat != None  # noqa: E711 (an object array)
    for _, by_town, by_category in LEVELS[:4]:
        names, groups = level_groups("", by_town, by_category, coded, e_has_cat)
        if groups is None:
            continue
        for g, part in groups.slices():
            key = full_key("", names, groups.keys[g])
            cell(key).firms["matched_firms"] |= BitMap64(e_firm_i[groups.order[part]])


def add_firm_counts(cell: Callable[[Key], Cell], registered: Sequence[Any], sign: int = 1) -> None:
    """Firms registered (and those with a need) per (town, has a need, count) row, into the
    city's and the town's cells; ``sign`` -1 takes them away."""
    for town_key, has_need, n in registered:
        for key in (("", "", ALL, ALL), ("", "", town_key, ALL)):
            c = cell(key)
            c.counts["firms_registered"] += sign * int(n)
            if has_need:
                c.counts["firms_with_need"] += sign * int(n)


def add_registered(cell: Callable[[Key], Cell], firms: Sequence[Any]) -> None:
    """The registered firms' ids per (town, section), as bitmaps."""
    town, section, ids = (np.array(col, dtype=object) for col in zip(*firms, strict=True))
    coded = {"town": Coded.of(town), REGISTERED: Coded.of(section)}
    groups = group([coded[REGISTERED], coded["town"]], np.arange(len(ids)))
    assert groups is not None
    ids_u = ids.astype(np.uint64)
    for g, part in groups.slices():
        value, town_key = groups.keys[g]
        c = cell((REGISTERED, value, town_key, ALL))
        c.firms["applicant_firms"] |= BitMap64(ids_u[groups.order[part]])


def add_applications(cell: Callable[[Key], Cell], rows: Sequence[Any]) -> None:
    """Sum the applications ``rows`` (build's columns) into every level's cells."""
    columns = (np.array(col, dtype=object) for col in zip(*rows, strict=True))
    (firm, town, cat, status, first, size, section, institution, product, eligibility, requested,
     amount, rate, hours, submitted_day, decided_day) = columns  # fmt: skip
    approved = status == APPROVED
    first_loans = approved & (first == True)  # noqa: E712 (an object array)
    approved_amount = np.where(approved & (amount != None), amount, 0).astype(np.int64)  # noqa: E711
    small_micro = np.isin(size, SMALL_AND_MICRO)
    rated = approved & (rate != None)  # noqa: E711
    measures = {
        "applications": np.ones(len(rows), dtype=np.int64),
        "approved": approved.astype(np.int64),
        "rejected": (status == REJECTED).astype(np.int64),
        "pending": (status == SUBMITTED).astype(np.int64),
        "requested_yuan": requested.astype(np.int64),
        "approved_yuan": approved_amount,
        "small_micro_yuan": np.where(small_micro, approved_amount, 0),
        "small_micro_or_agri_yuan": np.where(small_micro | (section == "A"), approved_amount, 0),
        "sme_yuan": np.where(size != SizeClass.LARGE.value, approved_amount, 0),
        "first_loans": first_loans.astype(np.int64),
        "rate_bp_sum": np.where(rated, rate, 0).astype(np.int64),
        "rate_bp_n": rated.astype(np.int64),
        **{name: (eligibility == name).astype(np.int64) for name in ELIGIBILITY},
    }
    has_firm = firm != None  # noqa: E711
    firm_i = np.where(has_firm, firm, 0).astype(np.uint64)
    decided = hours != None  # noqa: E711
    hours_f = np.where(decided, hours, 0.0).astype(np.float64)
    in_scope = np.isin(status, (SUBMITTED, APPROVED, REJECTED))
    s_day, d_day = _days(submitted_day), _days(decided_day)
    coded = {
        "town": Coded.of(town),
        "category": Coded.of(cat),
        **{
            d: Coded.of(v) for d, v in zip(BY_DIMENSIONS, (institution, size, section), strict=True)
        },
        PRODUCT: Coded.products(product, institution),
    }
    has_cat = cat != None  # noqa: E711
    names_of_counts = list(measures)
    for dimension, by_town, by_category in LEVELS:
        names, groups = level_groups(dimension, by_town, by_category, coded, has_cat)
        if groups is None:
            continue
        sums = np.stack([groups.sums(measures[n]) for n in names_of_counts], axis=1).tolist()
        days = day_counts(groups, in_scope, s_day, d_day) if dimension == "institution" else {}
        # Sorted once per level, so that each group below is a slice (a view), not a gather.
        o = groups.order
        firms_o, has_firm_o, hours_o, decided_o = firm_i[o], has_firm[o], hours_f[o], decided[o]
        approved_o, first_o = approved[o], first_loans[o]
        with_hours = dimension in ("", "institution")
        for g, part in groups.slices():
            c = cell(full_key(dimension, names, groups.keys[g]))
            for name, value in zip(names_of_counts, sums[g], strict=True):
                c.counts[name] += value
            f, has = firms_o[part], has_firm_o[part]
            c.firms["applicant_firms"] |= BitMap64(f[has])
            if with_hours:
                hours_g = hours_o[part][decided_o[part]]
                c.response_hours = (
                    np.concatenate([c.response_hours, hours_g])
                    if c.response_hours.size
                    else hours_g
                )
            if not dimension:
                c.firms["approved_firms"] |= BitMap64(f[has & approved_o[part]])
                c.firms["first_loan_firms"] |= BitMap64(f[has & first_o[part]])
            if g in days:
                c.day_counts = np.concatenate([c.day_counts, days[g]])


# --- the stored cube -----------------------------------------------------------------------


def stored_row(month: str, key: Key, cell: Cell) -> tuple[sa.Table, dict[str, Any]]:
    """The table and row that store ``cell`` (a plain cube cell or a dimension's)."""
    dimension, value, town, category = key
    table = stats_cube_by if dimension else stats_cube
    row: dict[str, Any] = {"month": month, "town_code": town, "category": category}
    if dimension:
        row |= {"dimension": dimension, "key": value}
    for column in (c.name for c in table.c):
        if column in row:
            continue
        if column in BITMAPS:
            row[column] = cell.firms[column].serialize()
        elif column == "response_hours":
            row[column] = cell.response_hours.astype("<f8").tobytes()
        elif column == "day_counts":
            row[column] = cell.day_counts.astype("<i4").tobytes()
        else:
            row[column] = cell.counts[column]
    return table, row


def stored_cell(row: Any, columns: Sequence[str]) -> Cell:
    c = Cell()
    for name in columns:
        value = getattr(row, name)
        if name in BITMAPS:
            c.firms[name] = BitMap64.deserialize(value)
        elif name == "response_hours":
            c.response_hours = np.frombuffer(value, dtype="<f8")
        elif name == "day_counts":
            c.day_counts = np.frombuffer(value, dtype="<i4").reshape(-1, 3)
        else:
            c.counts[name] = int(value)
    return c


def store(conn: Connection, month: str, cells: dict[Key, Cell]) -> None:
    """Make the month's rows of both cube tables ``cells``."""
    rows: dict[sa.Table, list[dict[str, Any]]] = {stats_cube: [], stats_cube_by: []}
    for key, c in cells.items():
        table, row = stored_row(month, key, c)
        rows[table].append(row)
    for table, values in rows.items():
        _replace_changed(conn, table, month, values)


def _replace_changed(
    conn: Connection, table: sa.Table, month: str, values: list[dict[str, Any]]
) -> None:
    """Write only the month's rows that differ from what is stored, and delete the gone ones.

    A write touches one cell per level (about twenty of a month's ~12,000), so after a write
    reading the month's rows and comparing them costs far less than writing them all again
    (index entries, TOAST, WAL). A row that only looks different (a bitmap serialised another
    way, response hours in another order) is rewritten: harmless, the result is ``values``.
    """
    pk = list(table.primary_key.columns)
    columns = [c.name for c in table.c]
    new = {tuple(v[c.name] for c in pk): v for v in values}
    stored = {
        tuple(r[: len(pk)]): tuple(_plain(x) for x in r)
        for r in conn.execute(
            sa.select(*(table.c[c] for c in columns)).where(table.c.month == month)
        )
    }
    changed = [k for k, v in new.items() if stored.get(k) != tuple(_plain(v[c]) for c in columns)]
    rewritten = set(changed)
    stale = [k for k in stored if k not in new or k in rewritten]
    if stale and len(stale) == len(stored):
        conn.execute(sa.delete(table).where(table.c.month == month))
    elif stale:
        for chunk in range(0, len(stale), 500):
            conn.execute(sa.delete(table).where(sa.tuple_(*pk).in_(stale[chunk : chunk + 500])))
    if changed:
        conn.execute(sa.insert(table), [new[k] for k in changed])


def _plain(value: Any) -> Any:
    """A value as the database gives it back (bytes for a blob, int for a count)."""
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else value


def read(
    conn: Connection,
    date_from: date | None,
    date_to: date | None,
    town_code: str | None,
    category: str | None,
    by: str | None,
    columns: Sequence[str],
) -> dict[str, Cell]:
    """The period's cells, merged per ``by`` (a dimension, 'month' or None → one '').

    'town' and 'category' break the plain cube down; 'institution', 'size_class' and
    'industry' read stats_cube_by at the level the town and category filters ask for.
    """
    period = split(date_from, date_to)
    if by in BY_DIMENSIONS:
        cube = stats_cube_by.c
        where = [
            cube.dimension == by,
            cube.town_code == (town_code or ALL),
            cube.category == (category or ALL),
        ]
        stmt = sa.select(cube.month, cube.key, *(cube[c] for c in columns))
    else:
        cube = stats_cube.c
        where = _plain_where(town_code, category, by)
        stmt = sa.select(cube.month, cube.town_code, cube.category, *(cube[c] for c in columns))
    where += period.month_where(cube.month)
    parts: dict[str, list[Cell]] = {}
    for row in [] if period.empty() else conn.execute(stmt.where(*where)):
        key = (
            row.key
            if by in BY_DIMENSIONS
            else _plain_key(by, row.month, row.town_code, row.category)
        )
        parts.setdefault(key, []).append(stored_cell(row, columns))
    for start, end in period.edges:
        for (dimension, value, town, cat), edge_cell in build(
            conn, start, end, town_code, category
        ).items():
            if by in BY_DIMENSIONS:
                if dimension != by or town != (town_code or ALL) or cat != (category or ALL):
                    continue
                key = value
            else:
                if dimension or not (
                    _wanted(town, town_code, by == "town")
                    and _wanted(cat, category, by == "category")
                ):
                    continue
                key = _plain_key(by, month_of(start), town, cat)
            parts.setdefault(key, []).append(edge_cell)
    return {k: merge(v) for k, v in parts.items()}


def read_products(
    conn: Connection,
    date_from: date | None,
    date_to: date | None,
    town_code: str | None,
    category: str | None,
    columns: Sequence[str],
) -> dict[str, Cell]:
    """The period's product cells (the city's, or ``town_code``'s) merged per ``product_key``.

    Whole months are read whatever ``category``: the caller keeps the products of the category
    (the product's category now, as the rows' filter reads it). The cut days are built from the
    rows of the category only, which is the same choice made earlier.
    """
    period = split(date_from, date_to)
    cube = stats_cube_by.c
    where = [
        cube.dimension == PRODUCT,
        cube.town_code == (town_code or ALL),
        cube.category == ALL,
        *period.month_where(cube.month),
    ]
    parts: dict[str, list[Cell]] = {}
    if not period.empty():
        stmt = sa.select(cube.key, *(cube[c] for c in columns)).where(*where)
        for row in conn.execute(stmt):
            parts.setdefault(row.key, []).append(stored_cell(row, columns))
    for start, end in period.edges:
        for (dimension, value, town, _), edge_cell in build(
            conn, start, end, town_code, category
        ).items():
            if dimension == PRODUCT and town == (town_code or ALL):
                parts.setdefault(value, []).append(edge_cell)
    return {k: merge(v) for k, v in parts.items()}


def _plain_where(town_code: str | None, category: str | None, by: str | None) -> list[Any]:
    cube = stats_cube.c
    where = []
    if by == "town":
        where.append(cube.town_code != ALL if town_code is None else cube.town_code == town_code)
    else:
        where.append(cube.town_code == (town_code or ALL))
    if by == "category":
        where.append(cube.category != ALL if category is None else cube.category == category)
    else:
        where.append(cube.category == (category or ALL))
    return where


def _wanted(value: str, chosen: str | None, broken_down: bool) -> bool:
    """Whether an edge cell's town (or category) belongs to the answer."""
    if broken_down:
        return value != ALL and (chosen is None or value == chosen)
    return value == (chosen or ALL)


def _plain_key(by: str | None, month: str, town: str, category: str) -> str:
    return {"town": town, "category": category, "month": month}.get(by or "", "")


def registered_groups(
    conn: Connection, town_code: str | None
) -> dict[tuple[str, str], list[BitMap64]]:
    """The firms registered now, per (town, industry section): each month's bitmap."""
    cube = stats_cube_by.c
    where = [cube.dimension == REGISTERED]
    if town_code is not None:
        where.append(cube.town_code == town_code)
    out: dict[tuple[str, str], list[BitMap64]] = {}
    stmt = sa.select(cube.town_code, cube.key, cube.applicant_firms).where(*where)
    for town, section, firms in conn.execute(stmt):
        out.setdefault((town, section), []).append(BitMap64.deserialize(firms))
    return out


def registered_by(conn: Connection, date_to: date | None, town_code: str | None) -> Cell:
    """Firms registered before ``date_to`` (all of them when None), from the cube and rows."""
    return read(
        conn, None, date_to, town_code, None, None, ("firms_registered", "firms_with_need")
    ).get("", Cell())
