"""POST /v1/decisions/history through the gateway: forwarded as NDJSON, per-line results,
resumable, keyed like every POST, institutions only, documented with an example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.gateway.api.decisions import PATH
from shared.schemas.history import HistoryLine
from tests.gateway.conftest import Api, Stack
from tests.registry import data
from tests.registry.test_history import ndjson, past_line

REPLAYED = "idempotent-replayed"


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM imported_decision")).scalar_one())


def results(answer: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in answer.content.splitlines()]
    return lines[:-1], lines[-1]


@pytest.fixture
def bank(stack: Stack) -> Api:
    return stack.institution("历史银行")


@pytest.fixture
def product_id(bank: Api) -> int:
    created = bank.post("/v1/products", json=data.product())
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def test_an_institution_imports_and_resumes(stack: Stack, bank: Api, product_id: int) -> None:
    lines = [past_line(product_id, requested_term_months=12 + n) for n in range(3)]
    bad = [*lines[:2], past_line(product_id, decided_at="2025-06-01T00:00:00Z")]
    params = {"import_id": "gw-1", "batch_size": 2}
    out, tail = results(bank.post(PATH, params=params, content=ndjson(bad)))
    assert [r["status"] for r in out] == ["imported", "imported", "invalid"]
    assert out[2]["errors"][0]["field"] == "decided_at"
    assert tail["batches"]["committed"] == 1
    assert count(stack.engine) == 2

    out, tail = results(bank.post(PATH, params=params, content=ndjson(lines)))
    assert [r["status"] for r in out] == ["already_committed", "already_committed", "imported"]
    assert tail["summary"] == {
        "lines": 3,
        "imported": 1,
        "duplicate": 0,
        "invalid": 0,
        "not_written": 0,
    }
    assert count(stack.engine) == 3


def test_a_reimport_under_a_new_import_id_is_duplicate(
    stack: Stack, bank: Api, product_id: int
) -> None:
    old, new = (past_line(product_id, requested_term_months=12 + n) for n in range(2))
    first, _ = results(bank.post(PATH, params={"import_id": "gw-a"}, content=ndjson([old])))
    out, tail = results(
        bank.post(PATH, params={"import_id": "gw-b"}, content=ndjson([old, new, new]))
    )
    assert [(r["line"], r["status"]) for r in out] == [
        (1, "duplicate"),
        (2, "imported"),
        (3, "duplicate"),
    ]
    assert out[0] == {"line": 1, "status": "duplicate", "id": first[0]["id"], "source": "imported"}
    assert out[2]["id"] == out[1]["id"]
    assert tail["summary"] == {
        "lines": 3,
        "imported": 1,
        "duplicate": 2,
        "invalid": 0,
        "not_written": 0,
    }
    assert count(stack.engine) == 2


def test_another_institutions_product_is_not_found(
    stack: Stack, bank: Api, product_id: int
) -> None:
    other = stack.institution("别家银行")
    theirs = other.post("/v1/products", json=data.product()).json()["id"]
    out, _ = results(
        bank.post(PATH, params={"import_id": "x"}, content=ndjson([past_line(theirs)]))
    )
    assert out[0]["errors"] == [{"field": "product_id", "message": f"product {theirs} not found"}]
    assert count(stack.engine) == 0


TOMORROW = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"decided_at": TOMORROW}, "decided_at"),
        ({"requested_amount_yuan": 20_000_000}, "requested_amount_yuan"),  # product: ≤ 10m
        ({"requested_term_months": 48}, "requested_term_months"),  # product: 6–36
        ({"source": "live"}, "source"),  # unknown field
    ],
)
def test_each_bad_line_the_issue_names_is_a_line_error_naming_its_field(
    stack: Stack, bank: Api, product_id: int, change: dict[str, Any], field: str
) -> None:
    """Through the gateway: the bad line is invalid, naming the field, and its batch (the good
    line before it) is not written."""
    body = ndjson([past_line(product_id), past_line(product_id, **change)])
    out, tail = results(bank.post(PATH, params={"import_id": "bad"}, content=body))
    assert out[0] == {"line": 1, "status": "not_written", "reason": "batch_rejected"}
    assert out[1]["status"] == "invalid"
    assert [e["field"] for e in out[1]["errors"]] == [field]
    assert tail["batches"]["rejected"] == 1
    assert count(stack.engine) == 0


def test_an_idempotency_key_replays_the_answer(stack: Stack, bank: Api, product_id: int) -> None:
    body = ndjson([past_line(product_id)])
    headers = {"Idempotency-Key": "hist-key", "Content-Type": "application/x-ndjson"}
    first = bank.post(PATH, params={"import_id": "k1"}, content=body, headers=headers)
    out, _ = results(first)
    assert out[0]["status"] == "imported"
    assert REPLAYED not in first.headers
    again = bank.post(PATH, params={"import_id": "k1"}, content=body, headers=headers)
    assert again.headers[REPLAYED] == "true"
    assert again.content == first.content
    assert count(stack.engine) == 1
    other = bank.post(PATH, params={"import_id": "k2"}, content=body, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


def test_only_institutions_import(stack: Stack, product_id: int) -> None:
    body = ndjson([past_line(product_id)])
    for role, scope in (("portal", {}), ("official", {}), ("admin", {})):
        caller = stack.principal(role, **scope)
        answer = caller.post(PATH, params={"import_id": "x"}, content=body)
        assert answer.status_code == 404, (role, answer.text)
    assert stack.admin.post(PATH, params={"import_id": "x"}, content=body).status_code == 404
    assert count(stack.engine) == 0


def test_bad_queries_name_the_field(bank: Api, product_id: int) -> None:
    body = ndjson([past_line(product_id)])
    missing = bank.post(PATH, content=body)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "import_id"
    odd = bank.post(PATH, params={"import_id": "a b"}, content=body)
    assert odd.json()["errors"][0]["field"] == "import_id"
    huge = bank.post(PATH, params={"import_id": "a", "batch_size": 0}, content=body)
    assert huge.json()["errors"][0]["field"] == "batch_size"
    empty = bank.post(PATH, params={"import_id": "a"}, content=b"")
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "body"


def test_documented_with_an_example_that_imports(stack: Stack, bank: Api, product_id: int) -> None:
    operation = stack.client.app.openapi()["paths"][PATH]["post"]  # type: ignore[attr-defined]
    # The body is documented as an array of lines (services/gateway/openapi/_ndjson.py).
    lines = operation["requestBody"]["content"]["application/x-ndjson"]["example"]
    assert len(lines) == 2
    assert {line["decision"]["outcome"] for line in lines} == {"approved", "rejected"}
    for line in lines:
        HistoryLine.model_validate(line)  # the example passes the line's own rules
    answer = operation["responses"]["200"]
    assert "application/x-ndjson" in answer["content"]
    assert "duplicate" in answer["description"]
    example = [
        orjson.loads(line)
        for line in answer["content"]["application/x-ndjson"]["example"].splitlines()
    ]
    statuses = [line["status"] for line in example[:-1]]
    assert "duplicate" in statuses
    assert example[-1]["summary"]["duplicate"] == statuses.count("duplicate")
    # The example, pointed at this bank's product, imports as it stands.
    body = b"".join(orjson.dumps(line | {"product_id": product_id}) + b"\n" for line in lines)
    out, _ = results(bank.post(PATH, params={"import_id": "doc"}, content=body))
    assert [r["status"] for r in out] == ["imported", "imported"]
