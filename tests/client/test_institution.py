"""An institution through the client, against the live stack: products (with If-Match),
reach and preview, leads, decisions, and the NDJSON import of past decisions."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from finmatch_client import Conflict, NotFound, PreconditionFailed, ValidationFailed
from finmatch_client.models import (
    ApplicationCreate,
    ApplicationStatus,
    DecisionCreate,
    DecisionOutcome,
    HistoryFirm,
    HistoryLine,
    ProductCategory,
    ProductUpdate,
    RejectionReason,
)
from tests.client.conftest import World, firm_and_product, new_product, unknown_fields

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_products_listed_updated_with_their_version_and_removed(world: World) -> None:
    product = world.bank.products.create(new_product(name="客户端测试绿色贷", category="green"))
    assert product.institution_id == world.institution_id
    assert unknown_fields(product) == []
    assert world.portal.products.get(product.id) == product  # any principal browses

    updated = world.bank.products.update(product, ProductUpdate(rate_min_bp=360))
    assert (updated.rate_min_bp, updated.version) == (360, product.version + 1)
    with pytest.raises(PreconditionFailed):
        world.bank.products.update(product, ProductUpdate(rate_min_bp=370))
    with pytest.raises(ValidationFailed) as crossed:
        world.bank.products.update(updated, ProductUpdate(rate_min_bp=900))
    assert crossed.value.field in {"rate_min_bp", "rate_max_bp"}

    green = world.bank.products.list(category=ProductCategory.GREEN, page_size=1)
    assert product.id in {p.id for p in green}

    # Another institution's product is not the portal's to change.
    with pytest.raises(NotFound):
        world.portal.products.update(updated, ProductUpdate(rate_min_bp=370))
    world.bank.products.delete(product.id)
    assert product.id not in {p.id for p in world.bank.products.list(category="green")}


def test_reach_and_preview(world: World) -> None:
    firm, product = firm_and_product(world)
    reach = world.bank.products.reach(product.id)
    assert unknown_fields(reach) == []
    assert reach.product_id == product.id
    assert reach.firms_considered >= 1
    preview = world.bank.products.preview(new_product(min_patents=1_000))
    assert preview.product_id is None
    assert {c.criterion for c in preview.criteria} >= {"min_patents"}
    assert firm.id > 0


def test_leads_decisions_and_the_decision_read_back(world: World) -> None:
    firm, product = firm_and_product(world)
    application = world.portal.applications.create(
        ApplicationCreate(
            firm_id=firm.id,
            product_id=product.id,
            requested_amount_yuan=2_000_000,
            requested_term_months=12,
            consent_share_profile=True,
        )
    )
    leads = world.bank.applications.list(product_id=product.id).collect()
    assert [lead.id for lead in leads] == [application.id]

    with pytest.raises(ValidationFailed) as half:
        world.bank.applications.decide(
            application.id, DecisionCreate(outcome=DecisionOutcome.APPROVED)
        )
    assert half.value.field in {"approved_amount_yuan", "rate_bp", "term_months"}

    decision = world.bank.applications.decide(
        application.id,
        DecisionCreate(
            outcome=DecisionOutcome.APPROVED,
            approved_amount_yuan=1_500_000,
            rate_bp=395,
            term_months=12,
        ),
    )
    assert world.bank.applications.decision(application.id) == decision
    assert world.portal.applications.get(application.id).status is ApplicationStatus.APPROVED
    with pytest.raises(Conflict):
        world.bank.applications.decide(
            application.id,
            DecisionCreate(
                outcome=DecisionOutcome.REJECTED, rejection_reason=RejectionReason.OTHER
            ),
        )
    # The portal records no decisions.
    with pytest.raises(NotFound):
        world.other_portal.applications.get(application.id)


def history_line(product_id: int, days_ago: int, approved: bool) -> HistoryLine:
    submitted = datetime.now(UTC) - timedelta(days=days_ago)
    decision = (
        DecisionCreate(
            outcome=DecisionOutcome.APPROVED,
            approved_amount_yuan=1_000_000,
            rate_bp=400,
            term_months=12,
        )
        if approved
        else DecisionCreate(
            outcome=DecisionOutcome.REJECTED,
            rejection_reason=RejectionReason.INSUFFICIENT_REVENUE,
        )
    )
    return HistoryLine(
        product_id=product_id,
        firm=HistoryFirm(
            town_code="441900116",
            industry_section="C",
            established_on=datetime(2015, 3, 1).date(),
            employees=45,
            annual_revenue_yuan=18_000_000,
            total_assets_yuan=12_000_000,
            invention_patents=2,
        ),
        requested_amount_yuan=2_000_000,
        requested_term_months=12,
        submitted_at=submitted,
        decided_at=submitted + timedelta(days=3),
        decision=decision,
    )


def test_history_import_names_the_bad_line_and_resumes(world: World) -> None:
    product = world.bank.products.create(new_product(name="客户端测试历史导入"))
    lines = [history_line(product.id, 100 + n, approved=n % 2 == 0) for n in range(4)]
    future = history_line(product.id, 10, approved=True).model_copy(
        update={"submitted_at": datetime.now(UTC) + timedelta(days=5)}
    )
    import_id = f"history-{secrets.token_hex(4)}"
    first = world.bank.decisions.import_history([*lines, future], import_id=import_id, batch_size=4)
    assert [line.status for line in first.lines] == ["imported"] * 4 + ["invalid"]
    assert first.lines[4].errors is not None
    assert first.lines[4].errors[0].field == "submitted_at"
    assert first.summary["imported"] == 4
    again = world.bank.decisions.import_history(lines, import_id=import_id, batch_size=4)
    assert [line.status for line in again.lines] == ["already_committed"] * 4
    assert unknown_fields(again) == []
