"""The public API's main job end to end (in-process): list, submit, match, apply, decide, count."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy.engine import Engine

from tests.gateway.conftest import Stack, running_stack
from tests.registry import data
from tests.services import need_redis


def test_portal_to_decision_to_statistics(stack: Stack) -> None:
    bank = stack.institution("东莞测试银行")
    portal = stack.principal("portal")
    official = stack.principal("official", town_code="441900116")

    product = bank.post("/v1/products", json=data.product())
    assert product.status_code == 201, product.text
    product_id = product.json()["id"]
    other = bank.post("/v1/products", json=data.product(name="出口贷", min_export_usd=5_000_000))
    assert other.status_code == 201

    firm = portal.post("/v1/firms", json=data.firm())
    assert firm.status_code == 201, firm.text
    firm_id = firm.json()["id"]
    assert firm.headers["etag"] == '"1"'

    matches = portal.get(f"/v1/firms/{firm_id}/matches")
    assert matches.status_code == 200, matches.text
    body = matches.json()
    assert body["degraded"] is False
    assert body["is_prior"] is True  # no decisions yet: the rule-and-cost prior ranks
    assert [r["product_id"] for r in body["ranked"]] == [product_id]
    top = body["ranked"][0]
    assert top["product"]["name"] == "知识产权质押贷"
    assert any("专利" in reason["message"] for reason in top["reasons"])
    assert top["cost"]["annual_subsidy_yuan"] > 0
    [miss] = body["near_misses"]
    assert miss["unmet"][0]["code"] == "min_export_usd"
    english = portal.get(f"/v1/firms/{firm_id}/matches", params={"lang": "en"}).json()
    assert "short" in english["near_misses"][0]["unmet"][0]["message"]

    applied = portal.post(
        "/v1/applications",
        json={
            "firm_id": firm_id,
            "product_id": product_id,
            "requested_amount_yuan": 2_000_000,
            "requested_term_months": 12,
            "consent_share_profile": True,
        },
    )
    assert applied.status_code == 201, applied.text
    application_id = applied.json()["id"]

    leads = bank.get("/v1/applications").json()["data"]
    assert [lead["id"] for lead in leads] == [application_id]
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 200  # consent shares the profile
    decided = bank.post(
        f"/v1/applications/{application_id}/decision",
        json={
            "outcome": "approved",
            "approved_amount_yuan": 2_000_000,
            "rate_bp": 400,
            "term_months": 12,
        },
    )
    assert decided.status_code == 201, decided.text

    stats = official.get("/v1/stats/breakdown", params={"by": "category"})
    assert stats.status_code == 200, stats.text
    [row] = stats.json()["rows"]
    assert (row["key"], row["suppressed"]) == ("ip_pledge", True)  # one firm: withheld
    overview = official.get("/v1/stats/overview").json()
    assert (overview["approvals"], overview["approved_amount_yuan"]) == (1, 2_000_000)


def test_firm_changes_invalidate_cached_matches(stack: Stack) -> None:
    bank = stack.institution("银行")
    portal = stack.principal("portal")
    bank.post("/v1/products", json=data.product(min_employees=100))
    firm_id = portal.post("/v1/firms", json=data.firm(employees=45)).json()["id"]
    before = portal.get(f"/v1/firms/{firm_id}/matches").json()
    assert before["ranked"] == []
    assert before["near_misses"][0]["unmet"][0]["code"] == "min_employees"
    patched = portal.patch(
        f"/v1/firms/{firm_id}", json={"employees": 150}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    after = portal.get(f"/v1/firms/{firm_id}/matches").json()
    assert len(after["ranked"]) == 1


def test_new_products_reach_matches_at_once(stack: Stack) -> None:
    bank = stack.institution("银行")
    portal = stack.principal("portal")
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    assert portal.get(f"/v1/firms/{firm_id}/matches").json()["ranked"] == []
    bank.post("/v1/products", json=data.product())
    assert len(portal.get(f"/v1/firms/{firm_id}/matches").json()["ranked"]) == 1


def test_reference_vocabulary(stack: Stack) -> None:
    portal = stack.principal("portal")
    towns = portal.get("/v1/reference/towns").json()
    assert len(towns) == 36
    assert {"code": "441900126", "name_zh": "麻涌镇", "pinyin": "Machong", "kind": "town"} in towns
    categories = {c["category"]: c for c in portal.get("/v1/reference/product-categories").json()}
    assert categories["guanmaotong"]["plan_items"] == [72]
    assert len(portal.get("/v1/reference/industries").json()) == 20
    assert stack.client.get("/v1/reference/towns").status_code == 401


def test_probes(stack: Stack) -> None:
    assert stack.client.get("/healthz").json() == {"status": "ok"}
    ready = stack.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "registry": "ok",
        "matching": "ok",
        "redis": "not configured",
    }
    assert "x-request-id" in ready.headers
    echoed = stack.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


@pytest.mark.redis
def test_a_cached_match_costs_two_redis_round_trips(engine: Engine) -> None:
    """Key check with the rate-limit hit (one script), then the generations and the stored
    answer (one MGET); nothing else, however often the same answer is asked for."""
    with running_stack(engine, redis_url=need_redis()) as stack:
        bank = stack.institution("银行")
        bank.post("/v1/products", json=data.product())
        portal = stack.principal("portal")
        firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
        first = portal.get(f"/v1/firms/{firm_id}/matches")
        assert first.status_code == 200, first.text
        state = stack.client.app.state  # type: ignore[attr-defined]
        sent: Counter[str] = Counter()
        for client in (state.cache.redis.client, state.limiter._redis):
            original = client.execute_command

            async def counted(*args: object, _original: object = original, **kw: object) -> object:
                sent[str(args[0]).split()[0].upper()] += 1
                return await _original(*args, **kw)  # type: ignore[operator]

            client.execute_command = counted
        for _ in range(3):
            again = portal.get(f"/v1/firms/{firm_id}/matches")
            assert again.content == first.content
        assert sent == Counter({"EVALSHA": 3, "MGET": 3})


def test_a_firm_that_withdrew_its_consent_is_not_ranked(stack: Stack) -> None:
    stack.institution("东莞测试银行").post("/v1/products", json=data.product())
    portal = stack.principal("portal")
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    assert portal.get(f"/v1/firms/{firm_id}/matches").status_code == 200  # now cached

    withdrawn = portal.patch(
        f"/v1/firms/{firm_id}", json={"consent_matching": False}, headers={"If-Match": '"1"'}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    refused = portal.get(f"/v1/firms/{firm_id}/matches")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "matching_not_consented"
    assert refused.json()["errors"][0]["field"] == "consent_matching"

    given = portal.patch(
        f"/v1/firms/{firm_id}", json={"consent_matching": True}, headers={"If-Match": '"2"'}
    )
    assert given.status_code == 200, given.text
    assert portal.get(f"/v1/firms/{firm_id}/matches").status_code == 200
