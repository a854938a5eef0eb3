"""NDJSON bulk import: per-line results, batches committed whole, created vs updated."""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from tests.registry import data
from tests.registry.conftest import Actor


def ndjson(rows: list[dict[str, object]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def results(body: bytes) -> tuple[list[dict[str, object]], dict[str, object]]:
    lines = [orjson.loads(line) for line in body.splitlines()]
    return lines[:-1], lines[-1]


def test_bulk_creates_then_updates(portal: Actor, engine: Engine) -> None:
    rows = [data.firm(seq) for seq in range(1, 26)]
    first = portal.post(
        "/v1/firms/bulk", params={"import_id": "a", "batch_size": 10}, content=ndjson(rows)
    )
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/x-ndjson")
    lines, tail = results(first.content)
    assert [r["line"] for r in lines] == list(range(1, 26))
    assert {r["status"] for r in lines} == {"created"}
    assert tail["summary"] == {
        "lines": 25,
        "created": 25,
        "updated": 0,
        "invalid": 0,
        "not_written": 0,
    }
    assert tail["batches"] == {"committed": 3, "rejected": 0, "already_committed": 0, "conflict": 0}

    changed = [data.firm(seq, employees=5) for seq in range(1, 6)] + [data.firm(99)]
    second = portal.post("/v1/firms/bulk", params={"import_id": "b"}, content=ndjson(changed))
    lines, tail = results(second.content)
    assert [r["status"] for r in lines] == ["updated"] * 5 + ["created"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM firm")).scalar_one() == 26
        micro = conn.execute(sa.text("SELECT count(*) FROM firm WHERE size_class = 'micro'"))
        assert micro.scalar_one() == 5
        versions = conn.execute(sa.text("SELECT max(version) FROM firm")).scalar_one()
        assert versions == 2


def test_bulk_firms_readable_through_the_api(portal: Actor) -> None:
    response = portal.post(
        "/v1/firms/bulk", params={"import_id": "x"}, content=ndjson([data.firm(7)])
    )
    lines, _ = results(response.content)
    firm = portal.get(f"/v1/firms/{lines[0]['id']}").json()
    assert firm["credit_code"] == data.firm(7)["credit_code"]
    assert firm["size_class"] == "small"


def test_bulk_is_for_portals_only(bank: Actor) -> None:
    response = bank.post("/v1/firms/bulk", params={"import_id": "x"}, content=ndjson([data.firm()]))
    assert response.status_code == 404


def test_line_numbers_are_physical_lines(portal: Actor) -> None:
    body = b"\n".join([orjson.dumps(data.firm(1)), b"", b"   ", orjson.dumps(data.firm(2)), b""])
    response = portal.post("/v1/firms/bulk", params={"import_id": "blank"}, content=body)
    lines, tail = results(response.content)
    assert [(r["line"], r["status"]) for r in lines] == [(1, "created"), (4, "created")]
    assert tail["summary"]["lines"] == 2


def test_each_batch_is_timed_phase_by_phase(portal: Actor, engine: Engine) -> None:
    """finmatch_bulk_import_phase_seconds: one observation per batch and phase (the staging
    COPY on PostgreSQL only, Redis markers only with Redis)."""
    phases = ("validate", "write", "wait", "lookup", "stage", "upsert", "record")
    phases += ("entries", "commit")

    def counts() -> dict[str, float]:
        return {
            phase: REGISTRY.get_sample_value(
                "finmatch_bulk_import_phase_seconds_count", {"item": "firm", "phase": phase}
            )
            or 0.0
            for phase in phases
        }

    before = counts()
    rows = ndjson([data.firm(seq) for seq in range(1, 26)])
    answer = portal.post(
        "/v1/firms/bulk", params={"import_id": "t", "batch_size": 10}, content=rows
    )
    assert answer.status_code == 200, answer.text
    after = counts()
    observed = {phase: after[phase] - before[phase] for phase in phases}
    postgres = 3.0 if engine.dialect.name == "postgresql" else 0.0
    assert observed == {
        "validate": 3.0,
        "write": 3.0,
        "wait": 3.0,  # batches 1 and 2 as the next is submitted, batch 3 at the end
        "lookup": 3.0,
        "stage": postgres,
        "upsert": 3.0,
        "record": 3.0,
        "entries": 0.0,  # no Redis in these tests
        "commit": 3.0,
    }


def test_a_batch_holding_another_portals_firm_is_refused_whole(
    portal: Actor, other_portal: Actor, engine: Engine
) -> None:
    """The code of a firm another portal registered: that line is invalid, the batch's other
    lines are not written (not even the new firms), the other portal's firm is untouched."""
    theirs = other_portal.post("/v1/firms", json=data.firm(50, employees=7))
    assert theirs.status_code == 201, theirs.text
    mine = [data.firm(51), data.firm(50, employees=1), data.firm(52)]
    answer = portal.post("/v1/firms/bulk", params={"import_id": "grab"}, content=ndjson(mine))
    assert answer.status_code == 200, answer.text
    lines, tail = results(answer.content)
    assert [r["status"] for r in lines] == ["not_written", "invalid", "not_written"]
    assert lines[1]["errors"] == [
        {"field": "credit_code", "message": "registered by another portal"}
    ]
    assert tail["batches"]["rejected"] == 1
    assert tail["summary"]["created"] == tail["summary"]["updated"] == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM firm")).scalar_one() == 1
        employees = conn.execute(sa.text("SELECT employees, version FROM firm")).one()
        assert tuple(employees) == (7, 1)
    again = portal.post("/v1/firms/bulk", params={"import_id": "own"}, content=ndjson(mine[::2]))
    assert [r["status"] for r in results(again.content)[0]] == ["created", "created"]
