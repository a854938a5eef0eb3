"""Officials' statistics, the vocabulary and the admin's keys, principals, institutions and
training jobs through the client, against the live stack."""

from __future__ import annotations

from datetime import date

import pytest

from finmatch_client import NotFound, Unauthorized, ValidationFailed
from finmatch_client.models import (
    Dimension,
    KeyCreate,
    PrincipalCreate,
    PrincipalRole,
    ProductCategory,
    TrainRequest,
    WhatIfRequest,
)
from tests.client.conftest import TANGXIA, World, firm_and_product, unknown_fields

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
    assert unknown_fields([towns, industries, categories]) == []


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

    institutions = world.admin.admin.list_institutions()
    assert world.institution_id in {i.id for i in institutions.data}
    assert unknown_fields(institutions) == []
    with pytest.raises(NotFound):  # not an admin: the admin API does not exist for it
        world.portal.admin.list_institutions()


def test_training_jobs(world: World) -> None:
    assert isinstance(world.admin.admin.jobs(), list)
    assert isinstance(world.admin.admin.models(), list)
    # Too few decided applications on a fresh stack: refused before any job starts.
    with pytest.raises(ValidationFailed) as refused:
        world.admin.admin.train(TrainRequest(auto_promote=False))
    assert refused.value.code == "training_refused"
    assert refused.value.request_id
    with pytest.raises(NotFound):
        world.admin.admin.job(2**40)
