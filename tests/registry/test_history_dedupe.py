"""A past decision is held once per institution: a re-import under a new import_id, an
overlapping file, or a line repeated in one batch answers "duplicate" with the row that holds
it, writes nothing, and leaves the training export as it was."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry.history import TABLE, prepare_history_batch, write_history_batch
from services.registry.models.columns import utcnow
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor, make_principal
from tests.registry.test_history import HASH_KEY, count, export, ndjson, past_line, results, send


def counted(actor: Actor) -> dict[str, Any]:
    answer = actor.client.get("/internal/decisions/count", headers={"X-Internal-Token": TOKEN})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def statuses(body: bytes) -> list[tuple[int, str, int | None]]:
    lines, _tail = results(body)
    return [(r["line"], r["status"], r.get("id")) for r in lines]


@pytest.fixture
def product_id(bank: Actor) -> int:
    response = bank.post("/v1/products", json=data.product())
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def history(product_id: int, n: int = 3) -> list[dict[str, Any]]:
    """``n`` different past decisions (one firm applying on different days)."""
    return [
        past_line(
            product_id,
            submitted_at=f"2025-0{month}-03T09:30:00+08:00",
            decided_at=f"2025-0{month}-10T16:00:00+08:00",
        )
        for month in range(1, n + 1)
    ]


def test_the_same_file_under_a_new_import_id_is_all_duplicate(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    body = ndjson(history(product_id))
    first = send(bank, body, import_id="week-1")
    assert first.status_code == 200, first.text
    imported = statuses(first.content)
    assert [s for _n, s, _id in imported] == ["imported"] * 3
    rows_before, count_before = export(bank), counted(bank)

    again = send(bank, body, import_id="week-2")
    assert again.status_code == 200, again.text
    out, tail = results(again.content)
    # Each line points to the row the first import wrote.
    assert out == [
        {"line": n, "status": "duplicate", "id": row_id, "source": "imported"}
        for n, _status, row_id in imported
    ]
    assert tail["summary"] == {
        "lines": 3,
        "imported": 0,
        "duplicate": 3,
        "invalid": 0,
        "not_written": 0,
    }
    # Not an error: the batch commits (its import_batch row), so week-2 resumes like any import.
    assert tail["batches"] == {"committed": 1, "rejected": 0, "already_committed": 0, "conflict": 0}
    assert count(engine, "imported_decision") == 3
    assert export(bank) == rows_before  # training reads each decision once
    assert counted(bank) == count_before
    resumed = send(bank, body, import_id="week-2")
    assert [s for _n, s, _id in statuses(resumed.content)] == ["already_committed"] * 3


def test_an_overlapping_file_writes_only_its_new_lines(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    old, new = history(product_id, 2)
    first = statuses(send(bank, ndjson([old]), import_id="a").content)
    answer = send(bank, ndjson([old, new]), import_id="b")
    out, tail = results(answer.content)
    assert [(r["line"], r["status"]) for r in out] == [(1, "duplicate"), (2, "imported")]
    assert out[0]["id"] == first[0][2]
    assert out[1]["id"] != first[0][2]
    assert (tail["summary"]["imported"], tail["summary"]["duplicate"]) == (1, 1)
    assert count(engine, "imported_decision") == 2
    with engine.connect() as conn:
        # The new row is the one import b wrote, from its line 2.
        written = conn.execute(
            sa.select(TABLE.c.import_id, TABLE.c.line).where(TABLE.c.id == out[1]["id"])
        ).one()
    assert tuple(written) == ("b", 2)


@pytest.mark.parametrize("batch_size", [100, 1])
def test_a_line_repeated_in_one_request_is_written_once(
    bank: Actor, product_id: int, engine: Engine, batch_size: int
) -> None:
    """The second of a pair points to the first's row, in the same batch (its id from the
    batch's own insert) or in a later one (committed by then)."""
    line, other = history(product_id, 2)
    answer = send(bank, ndjson([line, other, line]), batch_size=batch_size)
    out, tail = results(answer.content)
    assert [(r["line"], r["status"]) for r in out] == [
        (1, "imported"),
        (2, "imported"),
        (3, "duplicate"),
    ]
    assert out[2]["id"] == out[0]["id"]
    assert tail["summary"]["duplicate"] == 1
    assert count(engine, "imported_decision") == 2


def test_the_same_decision_written_otherwise_is_a_duplicate(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    """The fingerprint is of the parsed line: key order, the times' offsets (the same instant)
    and a default written out change nothing."""
    line = past_line(product_id)
    del line["firm"]["export_revenue_usd"]
    same = dict(reversed(list(line.items())))
    same["submitted_at"] = "2025-06-03T01:30:00Z"  # 09:30 at +08:00
    same["decided_at"] = "2025-06-10T08:00:00+00:00"
    defaults = {"export_revenue_usd": 0, "is_green_listed": False, "trademarks": 0}
    same["firm"] = line["firm"] | defaults
    code = line["firm"]["credit_code"]
    same["firm"]["credit_code"] = f"{code[:6]}-{code[6:]}"  # normalised, then hashed
    assert orjson.dumps(same) != orjson.dumps(line)
    answer = send(bank, ndjson([line, same]))
    assert [s for _n, s, _id in statuses(answer.content)] == ["imported", "duplicate"]
    assert count(engine, "imported_decision") == 1


def test_a_line_differing_only_in_its_decision_is_new(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    line = past_line(product_id)
    rate = past_line(product_id, decision=line["decision"] | {"rate_bp": 410})
    noted = past_line(product_id, decision=line["decision"] | {"note": "复核后批准"})
    rejected = past_line(
        product_id, decision={"outcome": "rejected", "rejection_reason": "insufficient_revenue"}
    )
    send(bank, ndjson([line]), import_id="first")
    answer = send(bank, ndjson([line, rate, noted, rejected]), import_id="second")
    assert [s for _n, s, _id in statuses(answer.content)] == [
        "duplicate",
        "imported",
        "imported",
        "imported",
    ]
    assert count(engine, "imported_decision") == 4


def test_a_line_differing_only_in_the_firm_or_its_code_is_new(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    line = past_line(product_id)
    bigger = past_line(product_id)
    bigger["firm"]["employees"] += 1
    anonymous = past_line(product_id)
    del anonymous["firm"]["credit_code"]
    another = past_line(product_id)
    another["firm"]["credit_code"] = data.firm(7)["credit_code"]
    answer = send(bank, ndjson([line, bigger, anonymous, another, anonymous]))
    assert [s for _n, s, _id in statuses(answer.content)] == [
        "imported",
        "imported",
        "imported",
        "imported",
        "duplicate",  # without a code, the same features, terms and times: the same decision
    ]
    assert count(engine, "imported_decision") == 4


def test_another_institution_holds_its_own_copy(
    bank: Actor, other_bank: Actor, product_id: int, engine: Engine
) -> None:
    theirs = other_bank.post("/v1/products", json=data.product()).json()["id"]
    mine = statuses(send(bank, ndjson([past_line(product_id)])).content)
    answer = send(other_bank, ndjson([past_line(theirs)]))  # the same line, their product
    assert [s for _n, s, _id in statuses(answer.content)] == ["imported"]
    assert statuses(answer.content)[0][2] != mine[0][2]
    assert count(engine, "imported_decision") == 2


def test_a_colleague_of_the_same_institution_finds_it_held(
    bank: Actor, admin: Actor, product_id: int, engine: Engine
) -> None:
    """Resuming is per key (import_batch is the principal's); holding a decision is the
    institution's: a second key of the same bank re-importing the file writes nothing."""
    institution_id = bank.get(f"/v1/products/{product_id}").json()["institution_id"]
    colleague = make_principal(admin, "institution", institution_id=institution_id)
    body = ndjson(history(product_id, 2))
    first = statuses(send(bank, body).content)
    again = statuses(send(colleague, body).content)  # the same import_id, another key
    assert again == [(n, "duplicate", row_id) for n, _s, row_id in first]
    assert count(engine, "imported_decision") == 2


def test_a_rejected_batch_writes_none_of_its_lines(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    """A duplicate in a batch refused for another line is not_written like its neighbours:
    the batch is refused whole, and resending it fixed answers the lines anew."""
    old, new = history(product_id, 2)
    send(bank, ndjson([old]), import_id="a")
    bad = past_line(product_id, requested_term_months=99)
    out, tail = results(send(bank, ndjson([old, new, bad]), import_id="b").content)
    assert [r["status"] for r in out] == ["not_written", "not_written", "invalid"]
    assert tail["summary"]["duplicate"] == 0
    assert count(engine, "imported_decision") == 1
    fixed = statuses(send(bank, ndjson([old, new]), import_id="b").content)
    assert [s for _n, s, _id in fixed] == ["duplicate", "imported"]


def test_existing_rows_without_a_fingerprint_stay(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    """Rows from before migration 0021 have none (NULL never collides): a re-import writes
    the line once more, then holds it from there on."""
    line = past_line(product_id)
    send(bank, ndjson([line]), import_id="old")
    with engine.begin() as conn:
        conn.execute(sa.update(TABLE).values(fingerprint=None))
    send(bank, ndjson([line]), import_id="older")  # NULL again, as two pre-0021 imports left
    with engine.begin() as conn:
        conn.execute(sa.update(TABLE).values(fingerprint=None))
    assert [s for _n, s, _id in statuses(send(bank, ndjson([line]), import_id="new").content)] == [
        "imported"
    ]
    assert [
        s for _n, s, _id in statuses(send(bank, ndjson([line]), import_id="newer").content)
    ] == ["duplicate"]
    assert count(engine, "imported_decision") == 3


def _principal_and_institution(bank: Actor, product_id: int) -> tuple[int, int]:
    assert bank.id is not None
    institution_id = bank.get(f"/v1/products/{product_id}").json()["institution_id"]
    return bank.id, int(institution_id)


def _wait_until_blocked(engine: Engine, writer: threading.Thread) -> None:
    """Until the writer waits on the other transaction: on PostgreSQL a lock wait (its insert
    on the fingerprint index), on SQLite its BEGIN IMMEDIATE waiting out busy_timeout."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and writer.is_alive():
        if engine.dialect.name != "postgresql":
            time.sleep(0.5)
            return
        with engine.connect() as conn:
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the writer never waited on the other import")


def test_a_concurrent_import_of_the_same_line_loses_without_an_error(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    """Two imports race on one line: the other transaction inserts it first and commits while
    this batch waits; the unique index refuses this batch's insert, which is tried again and
    then finds the line held: a duplicate of the winner's row, its other line imported."""
    principal_id, institution_id = _principal_and_institution(bank, product_id)
    line, other = history(product_id, 2)
    raw = [(1, orjson.dumps(line)), (2, orjson.dumps(other))]
    batch = prepare_history_batch(0, raw, key=HASH_KEY)
    winner_row = batch.rows[0] | {
        "institution_id": institution_id,
        "imported_by_principal_id": principal_id,
        "import_id": "winner",
        "line": 1,
        "product_snapshot": {},
        "imported_at": utcnow(),
    }
    outcome: list[Any] = []

    def write() -> None:
        try:
            outcome.append(
                write_history_batch(
                    engine,
                    batch,
                    principal_id=principal_id,
                    institution_id=institution_id,
                    import_id="loser",
                    request_id=None,
                )
            )
        except Exception as exc:  # the test reports it below
            outcome.append(exc)

    with engine.connect() as winner:
        transaction = winner.begin()
        winner_id = winner.execute(sa.insert(TABLE).returning(TABLE.c.id), winner_row).scalar_one()
        writer = threading.Thread(target=write)
        writer.start()
        try:
            _wait_until_blocked(engine, writer)
        finally:
            transaction.commit()
        writer.join(timeout=30)
    assert not writer.is_alive()
    (result,) = outcome
    assert not isinstance(result, Exception), repr(result)
    assert result.status == "committed"
    assert [(r["line"], r["status"]) for r in result.results] == [
        (1, "duplicate"),
        (2, "imported"),
    ]
    assert result.results[0]["id"] == winner_id
    assert count(engine, "imported_decision") == 2
