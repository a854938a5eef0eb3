"""NDJSON bulk import: per-line results, batches committed whole, created vs updated."""

from __future__ import annotations

import orjson
import sqlalchemy as sa
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
