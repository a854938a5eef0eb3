"""A month's logged changes applied to its cube cells: a write costs its cells, not its month.

The triggers (migration 0019) log each small write's rows: an inserted row with sign +1, a
deleted one with -1, an updated one as it was (-1) and as it is (+1). For one month:

- counts and amounts add up: each cell gains the +1 rows' sums and loses the -1 rows';
- response hours and the league table's per-day counts are multisets: the +1 rows' values
  join them, the -1 rows' leave them;
- distinct firms (bitmaps) do not subtract: the logged rows' firms are taken out of every cell
  the logged rows fall in, then put back where their rows are now (read by firm id, through
  an index: a few rows).

Only the cells the logged rows, and the current rows of their firms, fall in are read and
written; the month's thousands of other cells are untouched. A cell left with nothing in it
is deleted, so the month's rows are what a rebuild from the rows would store (the tests
compare both). Anything that does not add up (a count below zero, a value to remove that is
not there) means the cube and the log disagree: ``apply`` raises ``Disagreement`` before it
writes anything, and the caller rebuilds the month.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import sqlalchemy as sa
from pyroaring import BitMap64
from sqlalchemy.engine import Connection

from services.registry.models.stats_cube import (
    stats_application_change,
    stats_cube,
    stats_cube_by,
    stats_event_change,
    stats_firm_change,
)
from services.registry.stats import cube
from services.registry.stats.china_time import day_start, month_start, next_month
from services.registry.stats.cube import COUNTS, REGISTERED, Cell, Key
from services.registry.stats.tables import APP, EVENT, FIRM

LOGS = (stats_application_change, stats_event_change, stats_firm_change)
# More logged rows than this in one month: rebuilding it from the rows costs less.
MAX_LOGGED = 5000
COUNT_COLUMNS = {t: [n for n in COUNTS if n in t.c] for t in (stats_cube, stats_cube_by)}
BLOB_COLUMNS = {
    t: [n for n in (*cube.BITMAPS, "response_hours", "day_counts") if n in t.c]
    for t in (stats_cube, stats_cube_by)
}


class Disagreement(Exception):
    """The stored cells and the logged changes do not add up: rebuild the month."""


def logged_months(conn: Connection) -> dict[str, int]:
    """Each month with logged changes, and how many rows are logged for it (one query)."""
    logged = sa.union_all(*(sa.select(log.c.month) for log in LOGS)).subquery()
    rows = conn.execute(sa.select(logged.c.month, sa.func.count()).group_by(logged.c.month))
    return {month: int(n) for month, n in rows}


def apply(conn: Connection, month: str) -> None:
    """Apply ``month``'s logged changes to its stored cells (the caller deletes the log)."""
    start = month_start(month)
    in_month = (day_start(start), day_start(next_month(start)))
    plus: dict[Key, Cell] = {}
    minus: dict[Key, Cell] = {}
    now: dict[Key, Cell] = {}  # the logged firms' cells as their rows are now
    touched: dict[Key, Cell] = {}  # cells the logged rows fall in (their keys only)

    log = stats_application_change
    for sign, cells in ((1, plus), (-1, minus)):
        rows = cube.application_rows(conn, log, [log.c.month == month, log.c.sign == sign])
        if rows:
            cube.add_applications(cube.adder(cells), rows)
    applicants = _firms(conn, log, log.c.firm_id, month)
    if applicants:
        where = [APP.c.submitted_at >= in_month[0], APP.c.submitted_at < in_month[1]]
        rows = cube.application_rows(conn, APP, [*where, APP.c.firm_id.in_(applicants)])
        if rows:
            cube.add_applications(cube.adder(now), rows)

    log = stats_event_change
    events = cube.event_rows(conn, log, [log.c.month == month])
    if events:
        cube.add_events(cube.adder(touched), events)
    matched = {int(firm) for firm, _, _ in events}
    if matched:
        where = [EVENT.c.created_at >= in_month[0], EVENT.c.created_at < in_month[1]]
        events = cube.event_rows(conn, EVENT, [*where, EVENT.c.firm_id.in_(matched)])
        if events:
            cube.add_events(cube.adder(now), events)

    log = stats_firm_change
    for sign, cells in ((1, plus), (-1, minus)):
        counts = conn.execute(
            sa.select(log.c.town_code, log.c.has_need, sa.func.count())
            .where(log.c.month == month, log.c.sign == sign)
            .group_by(log.c.town_code, log.c.has_need)
        ).all()
        cube.add_firm_counts(cube.adder(cells), counts)
    firms = conn.execute(
        sa.select(log.c.town_code, log.c.industry_section, log.c.id).where(log.c.month == month)
    ).all()
    if firms:
        cube.add_registered(cube.adder(touched), firms)
    registered = {int(firm) for _, _, firm in firms}
    if registered:
        where = [FIRM.c.created_at >= in_month[0], FIRM.c.created_at < in_month[1]]
        firms = conn.execute(
            sa.select(FIRM.c.town_code, FIRM.c.industry_section, FIRM.c.id).where(
                *where, FIRM.c.id.in_(registered)
            )
        ).all()
        if firms:
            cube.add_registered(cube.adder(now), firms)

    keys = set(plus) | set(minus) | set(now) | set(touched)
    stored = _read(conn, month, keys)
    taken = {
        "applications": BitMap64(applicants),
        "events": BitMap64(matched),
        "firms": BitMap64(registered),
    }
    empty = Cell()
    cells = {
        key: _patched(
            key,
            stored.get(key, empty),
            plus.get(key, empty),
            minus.get(key, empty),
            now.get(key, empty),
            taken,
        )
        for key in keys
    }
    _write(conn, month, cells, stored)


def _firms(conn: Connection, log: sa.Table, column: Any, month: str) -> set[int]:
    rows = conn.execute(
        sa.select(column).where(log.c.month == month, column.is_not(None)).distinct()
    )
    return {int(firm) for (firm,) in rows}


def _table(key: Key) -> sa.Table:
    return stats_cube_by if key[0] else stats_cube


def _source(key: Key, bitmap: str) -> str:
    """Which rows a cell's bitmap holds the firms of."""
    if key[0] == REGISTERED:
        return "firms"
    return "events" if bitmap == "matched_firms" else "applications"


def _patched(
    key: Key, stored: Cell, plus: Cell, minus: Cell, now: Cell, taken: dict[str, BitMap64]
) -> Cell:
    table = _table(key)
    out = Cell()
    for name in COUNT_COLUMNS[table]:
        value = stored.counts[name] + plus.counts[name] - minus.counts[name]
        if value < 0:
            raise Disagreement(f"{key} {name} would be {value}")
        out.counts[name] = value
    for name in BLOB_COLUMNS[table]:
        if name == "response_hours":
            out.response_hours = _without(
                np.concatenate([stored.response_hours, plus.response_hours]),
                minus.response_hours,
            )
        elif name == "day_counts":
            out.day_counts = _day_counts(stored.day_counts, plus.day_counts, minus.day_counts)
        else:
            source = taken[_source(key, name)]
            out.firms[name] = (stored.firms[name] - source) | now.firms[name]
    return out


def _without(values: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``values`` less ``removed``, as multisets (each removed value once per occurrence)."""
    if not removed.size:
        return values
    values = np.sort(values)
    unique, counts = np.unique(removed, return_counts=True)
    left = np.searchsorted(values, unique, "left")
    right = np.searchsorted(values, unique, "right")
    if np.any(right - left < counts):
        raise Disagreement("a response time to remove is not in the cell")
    keep = np.ones(len(values), dtype=bool)
    for at, n in zip(left.tolist(), counts.tolist(), strict=True):
        keep[at : at + n] = False
    return values[keep]


def _day_counts(stored: np.ndarray, plus: np.ndarray, minus: np.ndarray) -> np.ndarray:
    """(day submitted, day decided, applications) triplets summed per day pair, zeros gone."""
    if not len(plus) and not len(minus):
        return stored
    removed = minus.astype(np.int64)
    removed[:, 2] *= -1
    rows = np.concatenate([stored.astype(np.int64), plus.astype(np.int64), removed])
    days, inverse = np.unique(rows[:, :2], axis=0, return_inverse=True)
    sums = np.zeros(len(days), dtype=np.int64)
    np.add.at(sums, inverse.reshape(-1), rows[:, 2])
    if np.any(sums < 0):
        raise Disagreement("a day's applications would fall below zero")
    kept = sums > 0
    return np.column_stack([days[kept], sums[kept]]).astype(np.int32)


def _is_empty(key: Key, c: Cell) -> bool:
    table = _table(key)
    return (
        not any(c.counts[n] for n in COUNT_COLUMNS[table])
        and not any(c.firms[n] for n in cube.BITMAPS if n in table.c)
        and not c.response_hours.size
        and not len(c.day_counts)
    )


def _pks(table: sa.Table, keys: Iterable[Key]) -> list[tuple[str, ...]]:
    if table is stats_cube:
        return [(town, category) for dimension, _, town, category in keys if not dimension]
    return [key for key in keys if key[0]]


def _pk_columns(table: sa.Table) -> Any:
    c = table.c
    if table is stats_cube:
        return sa.tuple_(c.town_code, c.category)
    return sa.tuple_(c.dimension, c.key, c.town_code, c.category)


def _read(conn: Connection, month: str, keys: set[Key]) -> dict[Key, Cell]:
    out: dict[Key, Cell] = {}
    for table in (stats_cube, stats_cube_by):
        pks = _pks(table, keys)
        if not pks:
            continue
        columns = [*COUNT_COLUMNS[table], *BLOB_COLUMNS[table]]
        rows = conn.execute(
            sa.select(table).where(table.c.month == month, _pk_columns(table).in_(pks))
        )
        for row in rows:
            if table is stats_cube:
                key: Key = ("", "", row.town_code, row.category)
            else:
                key = (row.dimension, row.key, row.town_code, row.category)
            out[key] = cube.stored_cell(row, columns)
    return out


def _changed(key: Key, new: Cell, old: Cell) -> list[str]:
    """The stored columns whose values ``new`` changes (the others keep their bytes: on
    PostgreSQL an unchanged large value is not written again)."""
    table = _table(key)
    names = [n for n in COUNT_COLUMNS[table] if new.counts[n] != old.counts[n]]
    for name in BLOB_COLUMNS[table]:
        if name == "response_hours":
            same = np.array_equal(new.response_hours, old.response_hours)
        elif name == "day_counts":
            same = np.array_equal(new.day_counts, old.day_counts)
        else:
            same = new.firms[name] == old.firms[name]
        if not same:
            names.append(name)
    return names


def _write(conn: Connection, month: str, cells: dict[Key, Cell], stored: dict[Key, Cell]) -> None:
    """Delete the cells left empty, insert the new ones, update the changed columns of the
    others (grouped by which columns, one executemany each)."""
    gone = [key for key, c in cells.items() if key in stored and _is_empty(key, c)]
    for table in (stats_cube, stats_cube_by):
        pks = _pks(table, gone)
        if pks:
            conn.execute(
                sa.delete(table).where(table.c.month == month, _pk_columns(table).in_(pks))
            )
    inserts: dict[sa.Table, list[dict[str, Any]]] = {stats_cube: [], stats_cube_by: []}
    updates: dict[tuple[sa.Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    for key, c in cells.items():
        if _is_empty(key, c):
            continue
        table, row = cube.stored_row(month, key, c)
        if key not in stored:
            inserts[table].append(row)
            continue
        changed = tuple(_changed(key, c, stored[key]))
        if changed:
            pk = {f"pk_{col.name}": row[col.name] for col in table.primary_key.columns}
            updates.setdefault((table, changed), []).append(pk | {n: row[n] for n in changed})
    for table, values in inserts.items():
        if values:
            conn.execute(sa.insert(table), values)
    for (table, changed), values in updates.items():
        where = [col == sa.bindparam(f"pk_{col.name}") for col in table.primary_key.columns]
        statement = sa.update(table).where(*where).values({n: sa.bindparam(n) for n in changed})
        conn.execute(statement, values)
