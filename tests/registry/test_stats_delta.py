"""Logged changes applied to the cube leave it exactly as a rebuild from the rows would.

Every kind of small write the triggers log (applications inserted, decided, moved to another
month, town or firm, deleted; match events added, moved, deleted; firms registered, moved,
given a need, erased) is applied by ``delta`` to the cells it touches. The cube's two tables
are then compared, cell by cell, with the same months rebuilt from the rows.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from pyroaring import BitMap64
from sqlalchemy.engine import Engine

from services.registry import stats
from services.registry.models import stats_cube, stats_cube_by, stats_dirty
from services.registry.models.stats_cube import LOG_ROWS_MAX
from services.registry.stats import refresh as refresh_module
from services.registry.stats.china_time import next_month
from services.registry.stats.filters import Filters
from services.registry.stats.tables import APP
from tests.registry.test_stats_cube import (
    assert_same_overview,
    both_ways,
    dirty_months,
    logged_months,
    world,
)

__all__ = ["world"]  # the fixture, shared with test_stats_cube


def cube_rows(engine: Engine) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Both cube tables, each cell's figures comparable whatever their stored order."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    with engine.connect() as conn:
        for table in (stats_cube, stats_cube_by):
            pk = [c.name for c in table.primary_key.columns]
            for row in conn.execute(sa.select(table)).mappings():
                cell: dict[str, Any] = {}
                for name, value in row.items():
                    if name in pk:
                        continue
                    if name.endswith("_firms"):
                        cell[name] = list(BitMap64.deserialize(value))
                    elif name == "response_hours":
                        cell[name] = sorted(np.frombuffer(value, dtype="<f8").tolist())
                    elif name == "day_counts":
                        triplets = np.frombuffer(value, dtype="<i4").reshape(-1, 3)
                        cell[name] = sorted(map(tuple, triplets.tolist()))
                    else:
                        cell[name] = value
                out[(table.name, *(row[c] for c in pk))] = cell
    return out


def rebuilt_rows(engine: Engine) -> dict[tuple[Any, ...], dict[str, Any]]:
    with engine.begin() as conn:
        months = set(conn.execute(sa.select(stats_cube.c.month)).scalars())
        conn.execute(sa.insert(stats_dirty), [{"month": m, "version": 1} for m in months])
    stats.refresh_cube(engine)
    return cube_rows(engine)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def small_writes(engine: Engine) -> None:
    """One of each kind of write, each its own statement or two, as the API would make."""
    decided = scalar(engine, "SELECT min(id) FROM application WHERE status = 'submitted'")
    approved = scalar(engine, "SELECT min(id) FROM application WHERE status = 'approved'")
    rejected = scalar(engine, "SELECT max(id) FROM application WHERE status = 'rejected'")
    with_firm = scalar(engine, "SELECT max(id) FROM application WHERE firm_id IS NOT NULL")
    erased = scalar(
        engine,
        "SELECT min(f.id) FROM firm f WHERE EXISTS (SELECT 1 FROM application a "
        "WHERE a.firm_id = f.id) AND EXISTS (SELECT 1 FROM match_event e WHERE e.firm_id = f.id)",
    )
    moved_firm = scalar(engine, "SELECT max(id) FROM firm WHERE need_amount_yuan IS NULL")
    event = scalar(engine, "SELECT min(id) FROM match_event WHERE firm_id IS NOT NULL")
    other_event = scalar(engine, "SELECT max(id) FROM match_event WHERE firm_id IS NOT NULL")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(APP.c.id, APP.c.submitted_at).where(APP.c.id.in_([decided, rejected]))
        )
        submitted = {int(i): at for i, at in rows}
    statements: list[tuple[str, dict[str, Any]]] = [
        # a decision: status, amount, rate, time
        (
            "UPDATE application SET status = 'approved', approved_amount_yuan = 1234567, "
            "approved_rate_bp = 395, decided_at = :at WHERE id = :i",
            {"i": decided, "at": submitted[decided] + timedelta(days=2, hours=5)},
        ),
        # a decision changed back: approved → rejected
        (
            "UPDATE application SET status = 'rejected', approved_amount_yuan = NULL, "
            "approved_rate_bp = NULL WHERE id = :i",
            {"i": approved},
        ),
        # to another month (and back in the figures of both)
        (
            "UPDATE application SET submitted_at = :at WHERE id = :i",
            {"i": rejected, "at": submitted[rejected] - timedelta(days=45)},
        ),
        # to another town, section and size
        (
            "UPDATE application SET town_code = '441900121', industry_section = 'A', "
            "size_class = 'micro' WHERE id = :i",
            {"i": with_firm},
        ),
        # a new application, as an existing one's copy to another firm
        (
            "INSERT INTO application (firm_id, product_id, institution_id, owner_principal_id, "
            "requested_amount_yuan, requested_term_months, status, consent_share_profile, "
            "consent_text_version, consent_at, firm_snapshot, product_snapshot, town_code, "
            "industry_section, size_class, is_first_loan, submitted_at, decided_at, "
            "approved_amount_yuan, approved_rate_bp, eligibility_status, eligibility_unmet, "
            "version) SELECT :firm, product_id, institution_id, owner_principal_id, "
            "requested_amount_yuan + 7, requested_term_months, 'approved', "
            "consent_share_profile, consent_text_version, consent_at, firm_snapshot, "
            "product_snapshot, town_code, industry_section, size_class, true, submitted_at, "
            "decided_at, 900000, 410, 'ineligible', eligibility_unmet, 1 "
            "FROM application WHERE id = :i",
            {"i": approved, "firm": moved_firm},
        ),
        # an application gone (its decision first)
        ("DELETE FROM decision WHERE application_id = :i", {"i": rejected}),
        ("DELETE FROM application WHERE id = :i", {"i": rejected}),
        # match events: moved to another firm and town, one gone, one new
        (
            "UPDATE match_event SET firm_id = :firm, town_code = '441900121' WHERE id = :i",
            {"i": event, "firm": moved_firm},
        ),
        ("DELETE FROM match_event WHERE id = :i", {"i": other_event}),
        (
            "INSERT INTO match_event (firm_id, product_id, rank, score, eligible, "
            "model_version, degraded, town_code, created_at) SELECT :firm, product_id, 1, "
            "0.5, true, 'test', false, town_code, created_at FROM match_event WHERE id = :i",
            {"i": event, "firm": erased},
        ),
        # firms: one moved, given a need and another section; one erased (its applications
        # and events keep their rows without it)
        (
            "UPDATE firm SET town_code = '441900116', industry_section = 'K', "
            "need_amount_yuan = 500000 WHERE id = :i",
            {"i": moved_firm},
        ),
        ("DELETE FROM consent WHERE firm_id = :i", {"i": erased}),
        ("DELETE FROM firm WHERE id = :i", {"i": erased}),
    ]
    for sql, params in statements:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)


def test_logged_changes_leave_the_cube_as_a_rebuild_would(
    world: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats.refresh_cube(world)
    small_writes(world)
    assert dirty_months(world) == set()
    assert len(logged_months(world)) >= 2
    rebuilt: list[str] = []
    real_rebuild = refresh_module.rebuild

    def spy(conn: Any, month: str) -> None:
        rebuilt.append(month)
        real_rebuild(conn, month)

    monkeypatch.setattr(refresh_module, "rebuild", spy)
    months = logged_months(world)
    assert stats.refresh_cube(world) == len(months)
    assert rebuilt == []  # every month was updated from its log, none rebuilt
    assert logged_months(world) == set()
    patched = cube_rows(world)
    assert patched == rebuilt_rows(world)
    cube, rows = both_ways(world, Filters())
    assert_same_overview(cube, rows)


def test_a_log_that_does_not_add_up_rebuilds_the_month(world: Engine) -> None:
    """A cube edited by hand (or restored from an older backup) and a log that no longer
    matches it: the month is rebuilt from the rows, never left with a count below zero."""
    stats.refresh_cube(world)
    app_id = scalar(world, "SELECT min(id) FROM application WHERE status = 'approved'")
    with world.begin() as conn:
        conn.execute(sa.text("UPDATE stats_cube SET approved = 0"))
        conn.execute(
            sa.text("UPDATE application SET status = 'rejected' WHERE id = :i"), {"i": app_id}
        )
    (month,) = logged_months(world)
    start = date.fromisoformat(f"{month}-01")
    stats.refresh_cube(world)
    assert logged_months(world) == set()
    cube, rows = both_ways(world, Filters(date_from=start, date_to=next_month(start)))
    assert_same_overview(cube, rows)  # that month rebuilt, exact
    cube, rows = both_ways(world, Filters())
    assert cube["approvals"] < rows["approvals"]  # the others keep the hand edit


def test_a_statement_of_many_rows_marks_its_months_instead_of_logging(world: Engine) -> None:
    stats.refresh_cube(world)
    with world.begin() as conn:
        conn.execute(sa.text("UPDATE match_event SET rank = rank + 1"))  # not a logged column
    assert dirty_months(world) == set()
    assert logged_months(world) == set()
    with world.begin() as conn:  # more rows than LOG_ROWS_MAX, in one statement
        conn.execute(
            sa.text(
                "INSERT INTO match_event (firm_id, product_id, rank, score, eligible, "
                "model_version, degraded, town_code, created_at) "
                "SELECT e.firm_id, e.product_id, 1, 0.5, true, 'bulk', false, a.town_code, "
                "e.created_at FROM match_event e CROSS JOIN application a LIMIT :n"
            ),
            {"n": LOG_ROWS_MAX + 100},
        )
    if world.dialect.name == "postgresql":  # statement-level: one look at all the rows
        assert dirty_months(world)
        assert logged_months(world) == set()
    else:  # row-level triggers: every row logged
        assert logged_months(world)
    cube, rows = both_ways(world, Filters())
    assert_same_overview(cube, rows)
