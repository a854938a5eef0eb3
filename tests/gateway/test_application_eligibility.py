"""Eligibility on every application: matching's rules at submission, stored and shown to the
institution (answer, leads, application.submitted); strict mode refuses an ineligible one;
unknown, never a refusal, when matching cannot be asked."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.registry.models import OutboxEvent
from shared.errors import PROBLEM_JSON
from shared.schemas.application import ApplicationCreate
from shared.schemas.matching import UnmetCriterion
from tests.gateway.conftest import Api, Stack, running_stack
from tests.gateway.test_degradation import CLOSED, Counting
from tests.registry import data


def setup(stack: Stack) -> tuple[Api, Api, int, int, int]:
    """A bank with an IP-pledge product (any patents) and an export loan (US$5m exports), and a
    portal with a firm that has patents and no exports."""
    bank = stack.institution("东莞测试银行")
    portal = stack.principal("portal")
    ip = bank.post("/v1/products", json=data.product()).json()["id"]
    export = bank.post(
        "/v1/products", json=data.product(name="出口贷", min_export_usd=5_000_000, min_patents=9)
    ).json()["id"]
    firm = portal.post("/v1/firms", json=data.firm()).json()["id"]
    return bank, portal, firm, ip, export


def apply(portal: Api, firm: int, product: int, **extra: Any) -> Any:
    params = extra.pop("params", None)
    body = data.application(firm, product) | extra
    return portal.post("/v1/applications", json=body, params=params)


def test_each_application_carries_its_eligibility(stack: Stack) -> None:
    bank, portal, firm, ip, export = setup(stack)
    fine = apply(portal, firm, ip)
    assert fine.status_code == 201, fine.text
    assert fine.json()["eligibility"] == {"status": "eligible", "unmet": []}

    lacking = apply(portal, firm, export)
    assert lacking.status_code == 201, lacking.text  # accepted without strict, but marked
    eligibility = lacking.json()["eligibility"]
    assert eligibility["status"] == "ineligible"
    assert [u["code"] for u in eligibility["unmet"]] == ["min_export_usd", "min_patents"]
    assert all(u["message"] for u in eligibility["unmet"])

    # The institution sees it in its leads and in the application.submitted event.
    leads = {
        a["id"]: a["eligibility"]["status"] for a in bank.get("/v1/applications").json()["data"]
    }
    assert leads == {fine.json()["id"]: "eligible", lacking.json()["id"]: "ineligible"}
    with Session(stack.engine) as session:
        events = session.exec(
            select(OutboxEvent.data)
            .where(OutboxEvent.type == "application.submitted")
            .order_by(col(OutboxEvent.id))
        ).all()
    assert [e["application"]["eligibility"]["status"] for e in events] == [
        "eligible",
        "ineligible",
    ]


def test_strict_refuses_an_ineligible_application_and_writes_nothing(stack: Stack) -> None:
    bank, portal, firm, ip, export = setup(stack)
    refused = apply(portal, firm, export, strict=True)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "not_eligible"
    assert [u["code"] for u in problem["unmet"]] == ["min_export_usd", "min_patents"]
    assert "min_export_usd" in problem["detail"]
    assert bank.get("/v1/applications").json()["data"] == []
    english = apply(portal, firm, export, strict=True, params={"lang": "en"})
    assert "short" in english.json()["unmet"][0]["message"]

    accepted = apply(portal, firm, ip, strict=True)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["eligibility"]["status"] == "eligible"


def test_the_strict_refusal_is_documented_as_it_answers(stack: Stack) -> None:
    """The OpenAPI's not_eligible example is shaped as the live refusal: with `unmet`."""
    _bank, portal, firm, _ip, export = setup(stack)
    refused = apply(portal, firm, export, strict=True).json()
    spec = stack.client.app.openapi()  # type: ignore[attr-defined]
    operation = spec["paths"]["/v1/applications"]["post"]
    documented = operation["responses"]["422"]
    assert "`unmet`" in documented["description"]
    example = documented["content"][PROBLEM_JSON]["examples"]["not_eligible"]["value"]
    assert set(example) == set(refused)
    assert example["code"] == refused["code"] == "not_eligible"
    assert set(example["unmet"][0]) == set(refused["unmet"][0])
    for unmet in example["unmet"]:
        UnmetCriterion.model_validate(unmet)
    # The request's example asks for strict mode, and the schema accepts it.
    request = operation["requestBody"]["content"]["application/json"]["example"]
    assert ApplicationCreate.model_validate(request).strict is True


def test_bad_strict_and_lang_are_422_naming_the_field(stack: Stack) -> None:
    _bank, portal, firm, ip, _export = setup(stack)
    for extra, field in (({"strict": "yes"}, "strict"), ({"strict": 1}, "strict")):
        answer = apply(portal, firm, ip, **extra)
        assert answer.status_code == 422
        assert field in {e["field"] for e in answer.json()["errors"]}
    answer = portal.post("/v1/applications", json=data.application(firm, ip), params={"lang": "fr"})
    assert answer.status_code == 422
    # An eligibility sent by the client is an unknown field, never trusted.
    forged = portal.post(
        "/v1/applications",
        json=data.application(firm, ip) | {"eligibility": {"status": "eligible", "unmet": []}},
    )
    assert forged.status_code == 422
    assert "eligibility" in {e["field"] for e in forged.json()["errors"]}


def test_another_portals_firm_gets_no_verdict_only_the_404(stack: Stack) -> None:
    _bank, _portal, firm, ip, _export = setup(stack)
    stranger = stack.principal("portal")
    answer = apply(stranger, firm, ip, strict=True)
    assert answer.status_code == 404
    assert "unmet" not in answer.json()


def test_matching_down_is_unknown_and_never_a_refusal(engine: Engine) -> None:
    with running_stack(engine, matching_url=CLOSED, matching_transport=Counting()) as stack:
        bank, portal, firm, _ip, export = setup(stack)
        answer = apply(portal, firm, export, strict=True)
        assert answer.status_code == 201, answer.text
        assert answer.json()["eligibility"] == {"status": "unknown", "unmet": []}
        [lead] = bank.get("/v1/applications").json()["data"]
        assert lead["eligibility"]["status"] == "unknown"


def test_statistics_show_the_share_of_ineligible_applications_per_product(stack: Stack) -> None:
    bank, portal, firm, ip, export = setup(stack)
    other_bank = stack.institution("另一家银行")
    theirs = other_bank.post("/v1/products", json=data.product(name="他行贷")).json()["id"]
    official = stack.principal("official", town_code="441900116")
    firms = [firm] + [
        portal.post("/v1/firms", json=data.firm(seq)).json()["id"] for seq in (2, 3, 4)
    ]
    for f in firms:
        assert apply(portal, f, export).status_code == 201  # none has US$5m exports
    for f in firms[:3]:
        assert apply(portal, f, ip).status_code == 201
    assert apply(portal, firms[0], theirs).status_code == 201  # one firm only: withheld

    rows = {r["product_id"]: r for r in official.get("/v1/stats/products").json()["rows"]}
    assert [rows[export][k] for k in ("applications", "eligible", "ineligible")] == [4, 0, 4]
    assert rows[export]["ineligible_share"] == 1.0
    assert rows[export]["name"] == "出口贷"
    assert [rows[ip][k] for k in ("applications", "ineligible", "ineligible_share")] == [3, 0, 0.0]
    assert rows[theirs]["suppressed"] is True
    assert rows[theirs]["applications"] is None
    # The institution sees its own products only; a portal sees none of it.
    mine = bank.get("/v1/stats/products").json()["rows"]
    assert {r["product_id"] for r in mine} == {export, ip}
    assert portal.get("/v1/stats/products").status_code == 404
    bad = official.get("/v1/stats/products", params={"date_from": "yesterday"})
    assert bad.status_code == 422
