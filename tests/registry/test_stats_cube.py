"""The statistics cube answers exactly what the rows answer, and stays fresh after any write.

The reference is ``overview_from_rows`` (tests/registry/stats_oracle.py) and
``breakdown_from_rows`` (``products_from_rows`` for applications per product): the same
figures computed by SQL over the rows themselves. A seeded world (a year and more of decided
applications, match events, some erased firms) is read both ways for periods that start and
end on month boundaries, inside months, across a New Year in China time, open on either side,
or empty.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry import stats
from services.registry.models import stats_cube as cube_table
from services.registry.models import stats_dirty
from services.registry.seed.loader import seed_demo
from services.registry.stats import Filters, delta
from services.registry.stats import cube as stats_cube
from services.registry.stats.china_time import CHINA
from services.registry.stats.eligibility import by_product
from shared.schemas.stats import Dimension
from tests.registry.stats_oracle import (
    category_amounts_from_rows,
    league_from_rows,
    matched_without_application_from_rows,
    overview_from_rows,
    products_from_rows,
)

SEEDED_AT = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
TANGXIA = "441900116"

PERIODS = [
    (None, None),
    (date(2026, 1, 1), date(2026, 7, 1)),  # whole months
    (date(2025, 12, 17), date(2026, 3, 9)),  # cut at both ends, across New Year
    (date(2026, 4, 3), date(2026, 4, 21)),  # inside one month
    (date(2026, 2, 1), date(2026, 2, 14)),  # starts on a boundary, ends inside
    (date(2026, 5, 9), date(2026, 6, 1)),  # starts inside, ends on a boundary
    (date(2026, 6, 15), None),
    (None, date(2026, 3, 15)),
    (date(2026, 3, 1), date(2026, 3, 1)),  # empty
    (date(2027, 1, 1), None),  # after everything
]


@pytest.fixture
def world(engine: Engine) -> Engine:
    assert seed_demo(engine, n_firms=300, n_applications=700, now=SEEDED_AT, progress=False).seeded
    with engine.begin() as conn:
        # Erased firms: their applications and match events stay, without the firm.
        conn.execute(sa.text("UPDATE application SET firm_id = NULL WHERE id % 37 = 0"))
        conn.execute(sa.text("UPDATE match_event SET firm_id = NULL WHERE id % 41 = 0"))
    return engine


def both_ways(engine: Engine, f: Filters) -> tuple[dict[str, Any], dict[str, Any]]:
    stats.refresh_cube(engine)
    with engine.connect() as conn:
        return stats.overview(conn, f), overview_from_rows(conn, f)


def assert_same_overview(cube: dict[str, Any], rows: dict[str, Any]) -> None:
    cube, rows = dict(cube), dict(rows)
    for name in ("response_hours_median", "response_hours_p90"):
        a, b = cube.pop(name), rows.pop(name)
        assert (a is None) == (b is None), name
        if a is not None:
            # Two interpolations of the same values may round either side of a 0.05 h boundary.
            assert a == pytest.approx(b, abs=0.11), name
    assert cube == rows


@pytest.mark.parametrize("category", [None, "ip_pledge"])
@pytest.mark.parametrize("town", [None, TANGXIA])
def test_the_cube_answers_what_the_rows_answer(
    world: Engine, town: str | None, category: str | None
) -> None:
    seen_applications = 0
    for date_from, date_to in PERIODS:
        f = Filters(date_from=date_from, date_to=date_to, town_code=town, category=category)
        cube, rows = both_ways(world, f)
        assert_same_overview(cube, rows)
        seen_applications += rows["applications"]
        with world.connect() as conn:
            for by in Dimension:
                assert stats.breakdown(conn, by, f) == stats.breakdown_from_rows(conn, by, f), (
                    by,
                    f,
                )
            for days, today in LEAGUE_DEADLINES:
                assert_same_league(
                    stats.institutions(conn, f, days, today),
                    league_from_rows(conn, f, days, today),
                )
            assert stats.category_amounts(conn, f) == category_amounts_from_rows(conn, f), f
            assert stats.matched_without_application(
                conn, f
            ) == matched_without_application_from_rows(conn, f), f
    assert seen_applications > 0  # the world has something to compare


# (deadline in working days, "today"): a deadline past which some are late, one that lets
# most through, and a "today" inside the seeded history, so open ones are not all overdue.
LEAGUE_DEADLINES = [(5, date(2026, 11, 20)), (30, date(2026, 11, 20)), (3, date(2026, 2, 10))]


def assert_same_league(cube: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    assert [r["institution_id"] for r in cube] == [r["institution_id"] for r in rows]
    for a, b in zip(cube, rows, strict=True):
        assert_same_overview(a, b)


def test_the_league_table_is_not_trivial(world: Engine) -> None:
    """The seeded world puts some applications past their deadline, and some within it."""
    stats.refresh_cube(world)
    with world.connect() as conn:
        league = stats.institutions(conn, Filters(), 5, date(2026, 11, 20))
    shown = [r for r in league if not r["suppressed"]]
    assert len(shown) >= 3
    assert sum(r["overdue"] for r in shown) > 0
    assert any(r["overdue"] < r["applications"] for r in shown)
    assert all(r["response_hours_median"] is not None for r in shown)


def test_whole_history_matches_and_is_not_trivial(world: Engine) -> None:
    cube, rows = both_ways(world, Filters())
    assert rows["applications"] > 600
    assert rows["firms_matched"] > 0
    assert rows["response_hours_median"] is not None
    assert_same_overview(cube, rows)


def test_matched_without_application_is_not_trivial(world: Engine) -> None:
    """The seed applies wherever it matches: detach a third of the firms' applications (as
    an erasure does) so that some matched firms have none."""
    with world.begin() as conn:
        conn.execute(sa.text("UPDATE application SET firm_id = NULL WHERE firm_id % 3 = 0"))
    stats.refresh_cube(world)
    with world.connect() as conn:
        rows = stats.matched_without_application(conn, Filters())
        assert rows == matched_without_application_from_rows(conn, Filters())
    shown = [r for r in rows if not r["suppressed"]]
    assert any(0 < r["firms_matched_no_application"] < r["firms_matched"] for r in shown)


def test_a_firm_changing_section_moves_it_in_the_coverage_list(world: Engine) -> None:
    stats.refresh_cube(world)
    with world.connect() as conn:
        firm_id, section = conn.execute(
            sa.text(
                "SELECT f.id, f.industry_section FROM firm f JOIN match_event e "
                "ON e.firm_id = f.id ORDER BY f.id LIMIT 1"
            )
        ).one()
    new_section = "B" if section != "B" else "D"
    with world.begin() as conn:
        conn.execute(
            sa.text("UPDATE firm SET industry_section = :s WHERE id = :i"),
            {"s": new_section, "i": firm_id},
        )
    assert len(logged_months(world)) == 1
    stats.refresh_cube(world)
    with world.connect() as conn:
        rows = stats.matched_without_application(conn, Filters())
        assert rows == matched_without_application_from_rows(conn, Filters())
    assert new_section in {r["industry_section"] for r in rows}


def dirty_months(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(stats_dirty.c.month)).scalars())


def logged_months(engine: Engine) -> set[str]:
    """Months with changes logged by the triggers, not yet applied to the cube."""
    with engine.connect() as conn:
        return {m for log in delta.LOGS for m in conn.execute(sa.select(log.c.month)).scalars()}


def pending_months(engine: Engine) -> set[str]:
    return dirty_months(engine) | logged_months(engine)


def test_every_month_of_a_fresh_database_starts_pending_and_a_query_cleans_it(
    world: Engine,
) -> None:
    months = pending_months(world)
    assert len(months) > 12  # the seeded history spans more than a year
    assert stats.refresh_cube(world) == len(months)
    assert pending_months(world) == set()
    assert stats.refresh_cube(world) == 0
    with world.connect() as conn:
        cube_months = set(conn.execute(sa.select(cube_table.c.month).distinct()).scalars())
    assert cube_months == months


def one_application(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT id, submitted_at FROM application WHERE status = 'submitted' LIMIT 1")
        ).one()
    submitted = row.submitted_at
    if isinstance(submitted, str):
        submitted = datetime.fromisoformat(submitted)
    local = submitted.replace(tzinfo=submitted.tzinfo or UTC) + CHINA
    return int(row.id), f"{local.year:04d}-{local.month:02d}"


@pytest.mark.parametrize(
    "write",
    [
        "UPDATE application SET status = 'withdrawn' WHERE id = :id",
        "DELETE FROM decision WHERE application_id = :id; DELETE FROM application WHERE id = :id",
    ],
)
def test_a_write_by_hand_is_logged_for_its_month_and_the_next_query_sees_it(
    world: Engine, write: str
) -> None:
    stats.refresh_cube(world)
    app_id, month = one_application(world)
    with world.begin() as conn:
        for statement in write.split("; "):
            conn.execute(sa.text(statement), {"id": app_id})
    assert logged_months(world) == {month}
    assert dirty_months(world) == set()  # applied to its cells, not rebuilt
    cube, rows = both_ways(world, Filters())
    assert_same_overview(cube, rows)
    assert pending_months(world) == set()


def test_a_firm_edit_is_logged_only_when_it_moves_a_figure(world: Engine) -> None:
    stats.refresh_cube(world)
    with world.begin() as conn:
        firm_id = conn.execute(sa.text("SELECT min(id) FROM firm")).scalar_one()
        conn.execute(
            sa.text("UPDATE firm SET name = name || '（改）' WHERE id = :i"), {"i": firm_id}
        )
        conn.execute(
            sa.text("UPDATE firm SET need_amount_yuan = need_amount_yuan + 1 WHERE id = :i"),
            {"i": firm_id},
        )
    assert pending_months(world) == set()
    with world.begin() as conn:
        conn.execute(
            sa.text("UPDATE firm SET town_code = '441900121' WHERE id = :i"), {"i": firm_id}
        )
    assert len(logged_months(world)) == 1
    cube, rows = both_ways(world, Filters(town_code="441900121"))
    assert_same_overview(cube, rows)


def test_a_product_changing_category_marks_every_month(world: Engine) -> None:
    stats.refresh_cube(world)
    with world.begin() as conn:
        product_id = conn.execute(
            sa.text("SELECT product_id FROM application GROUP BY product_id LIMIT 1")
        ).scalar_one()
        conn.execute(
            sa.text("UPDATE product SET category = 'leasing' WHERE id = :i"), {"i": product_id}
        )
    with world.connect() as conn:
        all_months = set(conn.execute(sa.select(cube_table.c.month).distinct()).scalars())
    assert dirty_months(world) == all_months
    for category in ("leasing", "ip_pledge"):
        cube, rows = both_ways(world, Filters(category=category))
        assert_same_overview(cube, rows)


# TRUNCATE fires no row triggers; SQLite has no TRUNCATE at all.
@pytest.mark.parametrize(
    "engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_truncate_on_postgres_marks_every_month(world: Engine) -> None:
    stats.refresh_cube(world)
    with world.begin() as conn:
        conn.execute(sa.text("TRUNCATE match_event"))
    assert dirty_months(world)
    cube, rows = both_ways(world, Filters())
    assert cube["firms_matched"] == rows["firms_matched"] == 0


def test_a_write_during_a_rebuild_is_neither_lost_nor_counted_twice(
    world: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write commits while its month is rebuilt: after the rebuild's snapshot on
    PostgreSQL (its logged change stays for the next step), just after it on SQLite."""
    stats.refresh_cube(world)
    app_id, month = one_application(world)
    with world.begin() as conn:  # a bulk write, say: the month is dirty
        conn.execute(
            sa.text("INSERT INTO stats_dirty (month, version) VALUES (:m, 1)"), {"m": month}
        )
    real_build = stats_cube.build
    wrote = threading.Event()

    def build_then_write(*args: Any, **kwargs: Any) -> Any:
        cells = real_build(*args, **kwargs)
        if not wrote.is_set():
            wrote.set()
            done = threading.Event()

            def write() -> None:
                # Another connection, as another request would; SQLite's single writer has
                # to wait for the rebuild, so its write lands just after, still seen.
                with world.begin() as other:
                    other.execute(
                        sa.text("UPDATE application SET status = 'withdrawn' WHERE id = :id"),
                        {"id": app_id},
                    )
                done.set()

            thread = threading.Thread(target=write)
            thread.start()
            if world.dialect.name == "postgresql":
                done.wait(10)  # committed before the rebuild's transaction ends
            threads.append(thread)
        return cells

    threads: list[threading.Thread] = []
    monkeypatch.setattr(stats_cube, "build", build_then_write)
    stats.refresh_cube(world)
    for thread in threads:
        thread.join(10)
    monkeypatch.setattr(stats_cube, "build", real_build)
    assert wrote.is_set()
    cube, rows = both_ways(world, Filters())
    assert rows["pending"] == cube["pending"]
    assert_same_overview(cube, rows)
    assert pending_months(world) == set()


@pytest.mark.parametrize(
    ("date_from", "date_to", "first", "last", "edges"),
    [
        (None, None, None, None, ()),
        (date(2026, 1, 1), date(2026, 3, 1), "2026-01", "2026-02", ()),
        (
            date(2025, 12, 17),
            date(2026, 3, 9),
            "2026-01",
            "2026-02",
            ((date(2025, 12, 17), date(2026, 1, 1)), (date(2026, 3, 1), date(2026, 3, 9))),
        ),
        (
            date(2026, 4, 3),
            date(2026, 4, 21),
            "2026-05",
            "2026-03",
            ((date(2026, 4, 3), date(2026, 4, 21)),),
        ),
        (date(2026, 6, 15), None, "2026-07", None, ((date(2026, 6, 15), date(2026, 7, 1)),)),
        (None, date(2026, 3, 15), None, "2026-02", ((date(2026, 3, 1), date(2026, 3, 15)),)),
    ],
)
def test_a_period_splits_into_whole_months_and_cut_days(
    date_from: date | None,
    date_to: date | None,
    first: str | None,
    last: str | None,
    edges: tuple[tuple[date, date], ...],
) -> None:
    period = stats_cube.split(date_from, date_to)
    assert (period.first, period.last, period.edges) == (first, last, edges)


def test_an_empty_period_reads_nothing() -> None:
    period = stats_cube.split(date(2026, 3, 1), date(2026, 3, 1))
    assert period.empty()
    assert period.edges == ()


def mixed_eligibility(engine: Engine) -> None:
    """The seed leaves every application's eligibility unknown: give them all three statuses,
    and move one application to another institution by hand (its product's stays), so that
    an institution's scope is the applications' institution, as the rows read it."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE application SET eligibility_status = CASE "
                "WHEN id % 5 < 2 THEN 'eligible' WHEN id % 5 < 4 THEN 'ineligible' "
                "ELSE 'unknown' END"
            )
        )
        conn.execute(
            sa.text(
                "UPDATE application SET institution_id = "
                "(SELECT max(id) FROM institution WHERE id <> application.institution_id) "
                "WHERE id = (SELECT min(id) FROM application)"
            )
        )


@pytest.mark.parametrize("category", [None, "ip_pledge"])
@pytest.mark.parametrize("town", [None, TANGXIA])
def test_applications_per_product_from_the_cube_are_what_the_rows_answer(
    world: Engine, town: str | None, category: str | None
) -> None:
    mixed_eligibility(world)
    stats.refresh_cube(world)
    with world.connect() as conn:
        institutions = [None, *conn.execute(sa.text("SELECT id FROM institution")).scalars()]
    listed = shown = ineligible = 0
    for date_from, date_to in PERIODS:
        f = Filters(date_from=date_from, date_to=date_to, town_code=town, category=category)
        with world.connect() as conn:
            for institution in institutions:
                cube = by_product(conn, f, institution)
                assert cube == products_from_rows(conn, f, institution), (f, institution)
                listed += len(cube)
                shown += sum(not r["suppressed"] for r in cube)
                ineligible += sum(r["ineligible"] or 0 for r in cube)
    assert listed > 0
    if town is None or category is None:  # one town's pledges are too few firms to show
        assert shown > 0
        assert ineligible > 0


def test_applications_per_product_follow_a_write(world: Engine) -> None:
    """An application declared ineligible after the cube was built is counted so at once."""
    mixed_eligibility(world)
    stats.refresh_cube(world)
    with world.connect() as conn:
        before = {r["product_id"]: r for r in by_product(conn, Filters())}
        app_id, product_id = conn.execute(
            sa.text(
                "SELECT id, product_id FROM application WHERE eligibility_status = 'eligible' "
                "ORDER BY id LIMIT 1"
            )
        ).one()
    with world.begin() as conn:
        conn.execute(
            sa.text("UPDATE application SET eligibility_status = 'ineligible' WHERE id = :i"),
            {"i": app_id},
        )
    stats.refresh_cube(world)
    with world.connect() as conn:
        after = {r["product_id"]: r for r in by_product(conn, Filters())}
        assert list(after.values()) == products_from_rows(conn, Filters())
    if not before[product_id]["suppressed"]:
        assert after[product_id]["ineligible"] == before[product_id]["ineligible"] + 1
        assert after[product_id]["eligible"] == before[product_id]["eligible"] - 1
