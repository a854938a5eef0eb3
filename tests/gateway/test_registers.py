"""Official registers through the public API: uploads by the city and admins only, provenance
in the portal's firm answer, and matching on the register's value (issue 16, parts 1, 2, 6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from services.registry.models.columns import utcnow
from services.registry.registers.sweep import BATCH
from services.registry.registers.tables import UPLOAD
from shared.vocab.credit_code import make_dongguan_credit_code
from tests.gateway.conftest import Api, Stack
from tests.registry import data

NDJSON = {"Content-Type": "application/x-ndjson"}


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(row) for row in rows) + b"\n"


def replace(api: Api, kind: str, rows: list[dict[str, Any]], upload_id: str) -> Any:
    return api.request(
        "PUT",
        f"/v1/registers/{kind}",
        params={"upload_id": upload_id},
        content=ndjson(rows),
        headers=NDJSON,
    )


def tail(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    last: dict[str, Any] = orjson.loads(response.content.splitlines()[-1])
    return last


def test_a_contradicted_declaration_stops_qualifying_for_a_product(stack: Stack) -> None:
    city = stack.principal("official")
    portal = stack.principal("portal")
    bank = stack.institution("东莞科技银行")
    product = bank.post("/v1/products", json=data.product(name="高企贷", requires_high_tech=True))
    assert product.status_code == 201, product.text
    firm = portal.post("/v1/firms", json=data.firm(1, is_high_tech=True)).json()
    matches = portal.get(f"/v1/firms/{firm['id']}/matches").json()
    assert [r["product_id"] for r in matches["ranked"]] == [product.json()["id"]]

    # The register lists another firm: the declaration is contradicted, the product lost.
    assert tail(replace(city, "high_tech", [data.register_line("high_tech", 2)], "h1"))["upload"][
        "diff"
    ] == {"added": 1, "removed": 0, "changed": 0, "unchanged": 0}
    read = portal.get(f"/v1/firms/{firm['id']}").json()
    assert read["provenance"]["is_high_tech"]["status"] == "contradicted"
    assert [w["code"] for w in read["warnings"]] == ["declaration_contradicted"]
    matches = portal.get(f"/v1/firms/{firm['id']}/matches").json()  # not the cached answer
    assert matches["ranked"] == []
    [miss] = matches["near_misses"]
    assert [u["code"] for u in miss["unmet"]] == ["requires_high_tech"]
    applied = portal.post(
        "/v1/applications", json=data.application(firm["id"], product.json()["id"])
    )
    assert applied.status_code == 201, applied.text
    assert applied.json()["eligibility"]["status"] == "ineligible"

    # Listed in the next version: verified, and the product is back.
    listed = [data.register_line("high_tech", 1), data.register_line("high_tech", 2)]
    assert tail(replace(city, "high_tech", listed, "h2"))["upload"]["version"] == 2
    read = portal.get(f"/v1/firms/{firm['id']}").json()
    assert read["provenance"]["is_high_tech"]["source"]["version"] == 2
    assert read["warnings"] == []
    matches = portal.get(f"/v1/firms/{firm['id']}/matches").json()
    assert [r["product_id"] for r in matches["ranked"]] == [product.json()["id"]]


def test_an_undeclared_listing_qualifies_the_firm(stack: Stack) -> None:
    admin, portal = stack.admin, stack.principal("portal")
    bank = stack.institution("东莞绿色银行")
    product = bank.post(
        "/v1/products", json=data.product(name="绿色贷", category="green", requires_green=True)
    ).json()
    firm = portal.post("/v1/firms", json=data.firm(1)).json()  # is_green_listed: false
    assert portal.get(f"/v1/firms/{firm['id']}/matches").json()["ranked"] == []
    tail(replace(admin, "green_list", [data.register_line("green_list", 1)], "g1"))
    matches = portal.get(f"/v1/firms/{firm['id']}/matches").json()
    assert [r["product_id"] for r in matches["ranked"]] == [product["id"]]


def test_a_csv_upload_through_the_gateway(stack: Stack) -> None:
    city = stack.principal("official")
    body = (
        "credit_code,contract_number,value_yuan,award_date,end_date\n"
        f"{make_dongguan_credit_code(1)},DG-1,800000,2025-01-10,2099-01-09\n"
        f"{make_dongguan_credit_code(2)[:-1]}0,DG-2,100,2025-01-10,2099-01-09\n"
    ).encode()
    answer = city.request(
        "PUT",
        "/v1/registers/gov_procurement_awards",
        params={"upload_id": "csv-1", "as_of": "2025-02-01"},
        content=body,
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    lines = [orjson.loads(line) for line in answer.content.splitlines()]
    assert answer.status_code == 200, answer.text
    assert [(r["line"], r["errors"][0]["field"]) for r in lines[:-1]] == [(3, "credit_code")]
    assert lines[-1]["upload"]["as_of"] == "2025-02-01"
    assert lines[-1]["summary"]["accepted"] == 1


@pytest.mark.parametrize(
    ("kind", "content_type", "status", "field"),
    [
        ("green_list", "application/json", 415, "Content-Type"),
        ("first_loans", "application/x-ndjson", 422, "kind"),
    ],
)
def test_refusals_name_the_field(
    stack: Stack, kind: str, content_type: str, status: int, field: str
) -> None:
    answer = stack.admin.request(
        "PUT",
        f"/v1/registers/{kind}",
        params={"upload_id": "x"},
        content=ndjson([data.register_line("green_list", 1)]),
        headers={"Content-Type": content_type},
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == field


def test_a_bad_date_refuses_the_upload_through_the_gateway(stack: Stack) -> None:
    rows = [data.register_line("high_tech", 1, valid_to="2030-01-01")]
    answer = replace(stack.admin, "high_tech", rows, "bad")
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert (error["line"], error["field"]) == (1, "valid_to")
    assert "a certificate runs 3 years" in error["message"]


def test_only_the_city_and_admins_upload(stack: Stack) -> None:
    rows = [data.register_line("green_list", 1)]
    refused = [
        stack.principal("portal"),
        stack.institution("某银行"),
        stack.principal("official", town_code="441900116"),
    ]
    for n, api in enumerate(refused):
        for method, params in (("PUT", {}), ("POST", {"mode": "append"})):
            answer = api.request(
                method,
                "/v1/registers/green_list",
                params={"upload_id": f"t{n}", **params},
                content=ndjson(rows),
                headers=NDJSON,
            )
            assert answer.status_code == 404, answer.text
    unknown = Api(stack.client, "fm_port_" + "x" * 43)
    assert replace(unknown, "green_list", rows, "u").status_code == 401
    city = stack.principal("official")
    assert tail(replace(city, "green_list", rows, "c"))["upload"]["version"] == 1


def test_an_append_retried_with_its_idempotency_key_is_answered_once(stack: Stack) -> None:
    city = stack.principal("official")
    tail(replace(city, "green_list", [data.register_line("green_list", 1)], "g1"))

    def append() -> Any:
        return city.post(
            "/v1/registers/green_list",
            params={"upload_id": "g2", "mode": "append"},
            content=ndjson([data.register_line("green_list", 2)]),
            headers=NDJSON | {"Idempotency-Key": "append-g2"},
        )

    first, second = append(), append()
    assert tail(first)["upload"]["version"] == 2
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    # Without the key, the upload_id alone makes the resend a no-op.
    again = city.post(
        "/v1/registers/green_list",
        params={"upload_id": "g2", "mode": "append"},
        content=ndjson([data.register_line("green_list", 2)]),
        headers=NDJSON,
    )
    assert tail(again)["upload"] == tail(first)["upload"]
    assert tail(again)["batches"]["already_committed"] == 1


def test_a_resend_of_an_abandoned_upload_is_409_upload_expired(stack: Stack) -> None:
    city = stack.principal("official")
    rows = [data.register_line("high_tech", seq) for seq in (1, 2, 3)]
    refused = city.request(
        "PUT",
        "/v1/registers/high_tech",
        params={"upload_id": "left", "batch_size": 2},
        content=ndjson([*rows[:2], rows[2] | {"unknown_field": 1}]),
        headers=NDJSON,
    )
    assert refused.status_code == 422, refused.text
    # Time travel: nothing sent for it for longer than FINMATCH_REGISTER_UPLOAD_TTL_HOURS (72).
    long_ago = utcnow() - timedelta(hours=73)
    with stack.engine.begin() as conn:
        conn.execute(
            sa.update(UPLOAD)
            .where(UPLOAD.c.upload_id == "left")
            .values(created_at=long_ago, active_at=long_ago)
        )
        conn.execute(
            sa.update(BATCH)
            .where(BATCH.c.import_id.like("register-upload:%"))
            .values(committed_at=long_ago)
        )

    again = replace(city, "high_tech", rows, "left")
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    problem = again.json()
    assert problem["code"] == "upload_expired"
    assert problem["errors"][0]["field"] == "upload_id"
    assert "start a new upload" in problem["detail"]
    with stack.engine.connect() as conn:
        staged = conn.execute(sa.text("SELECT count(*) FROM register_entry")).scalar_one()
    assert staged == 0
    assert tail(replace(city, "high_tech", rows, "left-again"))["upload"]["version"] == 1
