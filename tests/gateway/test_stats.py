"""Statistics through the gateway: coverage gaps and policy what-ifs from the matching rules.

The world: an export-credit product requiring US$10M of exports, and six firms in 塘厦
exporting US$2M–12M. Lowering the threshold to US$5M must admit exactly the firms between.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.registry.models import AuditEntry
from tests.gateway.conftest import Api, Stack, matching_app, registry_app, running_stack
from tests.registry import data

TANGXIA, HUMEN = "441900116", "441900121"
EXPORTS_USD = [2_000_000, 4_000_000, 6_000_000, 7_000_000, 8_000_000, 12_000_000]


def _export_product() -> dict[str, Any]:
    return data.product(
        name="莞贸通保单融资",
        category="guanmaotong",
        collateral_kind="insurance_policy",
        min_patents=None,
        min_export_usd=10_000_000,
        elig_size_classes=["small", "micro", "medium", "large"],
    )


@pytest.fixture
def world(engine: Engine) -> Any:
    with running_stack(engine) as stack:
        bank = stack.institution("出口银行")
        product = bank.post("/v1/products", json=_export_product())
        assert product.status_code == 201, product.text
        portal = stack.principal("portal")
        for seq, exports in enumerate(EXPORTS_USD, start=1):
            body = data.firm(seq, export_revenue_usd=exports, need_amount_yuan=1_000_000 * seq)
            assert portal.post("/v1/firms", json=body).status_code == 201
        # Two firms in 虎门 with needs, which the product's rules also leave out.
        for seq in (7, 8):
            assert portal.post("/v1/firms", json=data.firm(seq, town_code=HUMEN)).status_code == 201
        yield stack, product.json()["id"]


def _officials(stack: Stack) -> tuple[Api, Api, Api]:
    return (
        stack.principal("official"),
        stack.principal("official", town_code=TANGXIA),
        stack.principal("official", town_code=HUMEN),
    )


def test_what_if_counts_the_firms_a_lower_threshold_admits(world: Any) -> None:
    stack, product_id = world
    city, tangxia, humen = _officials(stack)
    question = {"product_id": product_id, "criterion": "min_export_usd", "value": 5_000_000}
    answer = city.post("/v1/stats/what-if", json=question)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["baseline_eligible"], result["changed_eligible"]) == (1, 4)
    assert result["newly_qualifying"] == 3  # the firms exporting US$6M, 7M and 8M
    assert result["requested_amount_yuan"] == 12_000_000  # their needs: 3M + 4M + 5M
    assert result["by_industry"] == [
        {
            "key": "C",
            "label_zh": "制造业",
            "label_en": "Manufacturing",
            "firms": 3,
            "suppressed": False,
        }
    ]
    assert [r["key"] for r in result["by_size_class"]] == ["small"]
    assert result["firms_considered"] == 8
    # The product itself is unchanged, and the question is in the audit log.
    assert city.get(f"/v1/products/{product_id}").json()["min_export_usd"] == 10_000_000
    with Session(stack.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "what_if")).one()
    assert entry.principal_id == city.principal_id  # type: ignore[attr-defined]
    assert entry.detail["value"] == 5_000_000
    # A town official asks about their town only.
    assert tangxia.post("/v1/stats/what-if", json=question).json()["firms_considered"] == 6
    assert humen.post("/v1/stats/what-if", json=question).json()["newly_qualifying"] == 0
    other = tangxia.post("/v1/stats/what-if", json=question | {"town_code": HUMEN})
    assert other.status_code == 404


def test_what_if_by_category_and_size_class(world: Any) -> None:
    stack, _ = world
    city, _, _ = _officials(stack)
    only_large = {"category": "guanmaotong", "criterion": "size_classes", "value": ["large"]}
    result = city.post("/v1/stats/what-if", json=only_large).json()
    assert (result["baseline_eligible"], result["changed_eligible"]) == (1, 0)
    assert (result["newly_qualifying"], result["no_longer_qualifying"]) == (0, 1)
    no_threshold = {"category": "guanmaotong", "criterion": "min_export_usd", "value": None}
    assert city.post("/v1/stats/what-if", json=no_threshold).json()["changed_eligible"] == 8


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"criterion": "min_export_usd", "value": 1}, 422, "product_id"),
        ({"category": "guanmaotong", "criterion": "min_export_usd", "value": -5}, 422, "value"),
        ({"category": "guanmaotong", "criterion": "min_export_usd", "value": ["x"]}, 422, "value"),
        ({"category": "guanmaotong", "criterion": "size_classes", "value": ["huge"]}, 422, "value"),
        ({"category": "guanmaotong", "criterion": "colour", "value": 1}, 422, "criterion"),
        ({"category": "leasing", "criterion": "min_years", "value": 1}, 422, "category"),
        ({"product_id": 999_999, "criterion": "min_years", "value": 1}, 404, "product_id"),
        ({"product_id": 2**70, "criterion": "min_years", "value": 1}, 422, "product_id"),
    ],
)
def test_bad_what_if_questions_name_the_field(
    world: Any, body: dict[str, Any], status: int, field: str
) -> None:
    stack, _ = world
    city, _, _ = _officials(stack)
    answer = city.post("/v1/stats/what-if", json=body)
    assert answer.status_code == status, answer.text
    assert field in answer.text


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999", "true", '"5"'])
def test_a_what_if_value_that_is_no_number_is_a_422_naming_it(world: Any, raw: str) -> None:
    stack, _ = world
    city, _, _ = _officials(stack)
    question = '{"category": "guanmaotong", "criterion": "min_export_usd", "value": ' + raw + "}"
    answer = city.post(
        "/v1/stats/what-if", content=question, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].startswith("value")


def test_coverage_names_towns_whose_needs_no_product_meets(world: Any) -> None:
    stack, _ = world
    city, tangxia, _ = _officials(stack)
    coverage = city.get("/v1/stats/coverage").json()
    assert coverage["degraded"] is False
    gaps = {(r["town_code"], r["industry_section"]): r for r in coverage["no_eligible_product"]}
    assert gaps[(TANGXIA, "C")]["firms_with_need"] == 6
    assert gaps[(TANGXIA, "C")]["firms_with_need_no_eligible"] == 5
    assert gaps[(HUMEN, "C")]["suppressed"] is True  # two firms only
    assert gaps[(HUMEN, "C")]["firms_with_need"] is None
    own = tangxia.get("/v1/stats/coverage").json()["no_eligible_product"]
    assert {r["town_code"] for r in own} == {TANGXIA}
    assert tangxia.get("/v1/stats/coverage", params={"town_code": HUMEN}).status_code == 404


def test_other_roles_get_404_from_every_statistic(world: Any) -> None:
    stack, product_id = world
    portal = stack.principal("portal")
    for path in ("overview", "breakdown?by=town", "institutions", "targets", "coverage", "firms"):
        assert portal.get(f"/v1/stats/{path}").status_code == 404, path
    question = {"product_id": product_id, "criterion": "min_years", "value": 1}
    assert portal.post("/v1/stats/what-if", json=question).status_code == 404


def test_coverage_degrades_when_matching_is_down(engine: Engine) -> None:
    closed = {
        "matching_url": "http://127.0.0.1:1",
        "matching_transport": httpx.AsyncHTTPTransport(),
    }
    with running_stack(engine, **closed) as stack:
        city = stack.principal("official")
        answer = city.get("/v1/stats/coverage")
        assert answer.status_code == 200
        assert answer.json()["degraded"] is True
        question = {"category": "guanmaotong", "criterion": "min_years", "value": 1}
        down = city.post("/v1/stats/what-if", json=question)
        assert down.status_code == 503
        assert "Retry-After" in down.headers


class Rendezvous(httpx.AsyncBaseTransport):
    """A downstream route that, on ``path``, says it was asked and waits (a while) for the
    other route to be asked too: both in flight at once, or ``met`` stays false."""

    def __init__(self, inner: httpx.AsyncBaseTransport, path: str, met: dict[str, bool]) -> None:
        self.inner, self.path, self.met = inner, path, met
        self.asked = asyncio.Event()
        self.other: Rendezvous | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.path and self.other is not None:
            self.asked.set()
            try:
                await asyncio.wait_for(self.other.asked.wait(), timeout=5)
                self.met[self.path] = True
            except TimeoutError:
                self.met[self.path] = False
        return await self.inner.handle_async_request(request)


def test_coverage_asks_the_registry_and_matching_at_once(engine: Engine) -> None:
    """The matched firms (registry) and the gaps (matching) do not depend on each other."""
    met: dict[str, bool] = {}
    registry = Rendezvous(
        httpx.ASGITransport(app=registry_app(engine)), "/v1/stats/coverage/matched", met
    )
    matching_service, _ = matching_app(httpx.ASGITransport(app=registry_app(engine)))
    matching = Rendezvous(
        httpx.ASGITransport(app=matching_service), "/internal/policy/coverage", met
    )
    registry.other, matching.other = matching, registry
    with running_stack(engine, registry_transport=registry, matching_transport=matching) as stack:
        answer = stack.principal("official").get("/v1/stats/coverage")
    assert answer.status_code == 200, answer.text
    assert answer.json()["degraded"] is False
    assert met == {"/v1/stats/coverage/matched": True, "/internal/policy/coverage": True}
