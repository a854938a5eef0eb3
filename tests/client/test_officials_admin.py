"""Officials' statistics, the vocabulary and the admin's keys, principals, institutions and
training jobs through the client, against the live stack."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, date, datetime, timedelta

import pytest

from finmatch_client import Conflict, NotFound, Unauthorized, ValidationFailed
from finmatch_client.models import (
    DecisionCreate,
    DecisionOutcome,
    Dimension,
    HistoryFirm,
    HistoryLine,
    InstitutionCreate,
    JobStatus,
    KeyCreate,
    PrincipalCreate,
    PrincipalRole,
    ProductCategory,
    ProductPublic,
    RejectionReason,
    TrainingJobPublic,
    TrainRequest,
    WhatIfRequest,
)
from tests.client.conftest import (
    TANGXIA,
    World,
    firm_and_product,
    new_product,
    unknown_fields,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_statistics_answers_parse_whole(world: World) -> None:
    firm_and_product(world)
    stats = world.admin.stats
    answers = [
        stats.overview(date_from=date(2020, 1, 1)),
        stats.breakdown(Dimension.TOWN),
        stats.institutions(deadline_days=5),
        stats.products(),
        stats.targets(town_code=TANGXIA),
        stats.coverage(town_code=TANGXIA),
        stats.firms(),
    ]
    for answer in answers:
        assert unknown_fields(answer) == [], type(answer).__name__
    overview, _breakdown, _league, _products, targets, coverage, firms = answers
    assert overview.firms_registered >= 1
    assert targets.scope == "town"
    assert not coverage.degraded
    assert firms.firms == sum(cell.firms for cell in firms.by_size_class.values())

    what_if = stats.what_if(
        WhatIfRequest(category=ProductCategory.IP_PLEDGE, criterion="min_patents", value=0)
    )
    assert unknown_fields(what_if) == []
    assert what_if.criterion == "min_patents"
    with pytest.raises(ValidationFailed):
        stats.what_if(WhatIfRequest(criterion="min_patents", value=0))  # neither target


def test_a_town_official_sees_only_their_town(world: World) -> None:
    mine = world.official.stats.targets()
    assert mine.town_code == TANGXIA
    with pytest.raises(NotFound):
        world.official.stats.overview(town_code="441900105")  # 长安镇


def test_reference_vocabulary(world: World) -> None:
    towns = world.portal.reference.towns()
    industries = world.portal.reference.industries()
    categories = world.portal.reference.product_categories()
    assert TANGXIA in {town.code for town in towns}
    assert {s.section for s in industries} >= {"A", "C", "T"}
    assert {c.category for c in categories} == set(ProductCategory)
    codes = {info.code: info for info in world.portal.reference.error_codes()}
    assert codes["stale_version"].statuses == [412]
    assert codes["stale_version"].en
    assert codes["stale_version"].zh
    assert unknown_fields([towns, industries, categories, list(codes.values())]) == []


def test_keys_principals_and_institutions(world: World) -> None:
    principal = world.admin.admin.create_principal(
        PrincipalCreate(role=PrincipalRole.PORTAL, name="短命门户")
    )
    created = world.admin.admin.create_key(KeyCreate(principal_id=principal.id, label="临时"))
    listed = world.admin.admin.list_keys(principal_id=principal.id).collect()
    assert [(k.id, k.prefix, k.revoked) for k in listed] == [(created.id, created.prefix, False)]

    short_lived = world.client_with_key(created.key)
    assert short_lived.reference.towns()
    world.admin.admin.revoke_key(created.id)
    with pytest.raises(Unauthorized) as refused:
        short_lived.reference.towns()
    assert refused.value.status == 401

    with pytest.raises(NotFound):  # not an admin: the admin API does not exist for it
        world.portal.admin.list_institutions().first_page()


def test_institutions_page_by_cursor(world: World) -> None:
    made = [
        world.admin.admin.create_institution(
            InstitutionCreate(name=f"客户端分页机构{secrets.token_hex(3)}", kind="guarantor")
        )
        for _ in range(3)
    ]
    pages = list(world.admin.admin.list_institutions(page_size=2).pages())
    assert all(len(page.data) <= 2 for page in pages)
    assert all(page.next_cursor is not None for page in pages[:-1])
    assert pages[-1].next_cursor is None
    listed = [institution.id for page in pages for institution in page.data]
    assert listed == sorted(set(listed))  # oldest first, none twice
    assert {world.institution_id, *(i.id for i in made)} <= set(listed)
    assert len(pages) >= 2
    everything = world.admin.admin.list_institutions().collect()
    assert [i.id for i in everything] == listed
    assert unknown_fields(everything) == []


def past_decisions(product: ProductPublic, count: int) -> list[HistoryLine]:
    """An institution's history: firms of every size, the larger and more inventive ones
    approved more often (with exceptions), decided over the past two years."""
    rng = random.Random(15)
    now = datetime.now(UTC)
    lines = []
    for n in range(count):
        revenue = rng.choice([2, 5, 10, 20, 50, 120]) * 1_000_000
        patents = rng.randint(0, 6)
        approved = (revenue >= 10_000_000 and patents >= 1) != (rng.random() < 0.15)
        submitted = now - timedelta(days=730 - 3 * n)
        lines.append(
            HistoryLine(
                product_id=product.id,
                firm=HistoryFirm(
                    credit_code=None,
                    town_code=TANGXIA,
                    industry_section="C",
                    established_on=date(2012 + n % 8, 3, 1),
                    employees=10 + revenue // 1_000_000,
                    annual_revenue_yuan=revenue,
                    total_assets_yuan=revenue // 2,
                    invention_patents=patents,
                ),
                requested_amount_yuan=2_000_000,
                requested_term_months=12,
                submitted_at=submitted,
                decided_at=submitted + timedelta(days=5),
                decision=DecisionCreate(
                    outcome=DecisionOutcome.APPROVED,
                    approved_amount_yuan=1_500_000,
                    rate_bp=420,
                    term_months=12,
                )
                if approved
                else DecisionCreate(
                    outcome=DecisionOutcome.REJECTED,
                    rejection_reason=RejectionReason.INSUFFICIENT_REVENUE,
                ),
            )
        )
    return lines


def _train(world: World) -> TrainingJobPublic:
    queued = world.admin.admin.train(TrainRequest(auto_promote=False))
    assert queued.status in {JobStatus.QUEUED, JobStatus.RUNNING}
    job = world.admin.admin.wait_for_job(queued.id, timeout=300, interval=0.5)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert unknown_fields(job) == []
    return job


def test_training_jobs(world: World) -> None:
    """Refused while too few decisions exist; an institution's imported history counts (it
    feeds training), so a job then trains on it; promote, and roll back."""
    admin = world.admin.admin
    assert isinstance(admin.jobs(), list)
    assert isinstance(admin.models(), list)
    # Too few decisions on a fresh stack: refused before any job starts.
    with pytest.raises(ValidationFailed) as refused:
        admin.train(TrainRequest(auto_promote=False))
    assert refused.value.code == "training_refused"
    assert refused.value.request_id
    with pytest.raises(NotFound):
        admin.job(2**40)

    product = world.bank.products.create(new_product(name="客户端测试训练历史"))
    history = past_decisions(product, 240)
    imported = world.bank.decisions.import_history(
        history, import_id=f"training-{secrets.token_hex(4)}"
    )
    assert imported.summary["imported"] == 240, imported.summary

    first = _train(world)
    assert first.outcome is not None
    assert first.outcome.promoted is False  # auto_promote off: a candidate only
    assert first.refit is not None
    assert first.refit.rows >= 240  # the imported rows (and the few live decisions)
    with pytest.raises(Conflict) as nothing_before:
        admin.rollback()  # nothing promoted yet
    assert nothing_before.value.code == "no_previous_model"

    champion = admin.promote(first.outcome.version)
    assert (champion.version, champion.status) == (first.outcome.version, "champion")
    second = _train(world)
    assert second.outcome is not None
    assert second.outcome.version != first.outcome.version
    promoted = admin.promote(second.outcome.version)
    assert promoted.previous_version == first.outcome.version

    rolled = admin.rollback()
    assert (rolled.version, rolled.status) == (first.outcome.version, "champion")
    statuses = {m.version: m.status for m in admin.models()}
    assert statuses[first.outcome.version] == "champion"
    assert statuses[second.outcome.version] == "retired"
    assert [j.id for j in admin.jobs(limit=2)] == [second.id, first.id]  # newest first
