"""A portal through the client, against the live stack: firms (one by one and in bulk),
matches and near misses, applications with consent, consents, tenancy, typed errors."""

from __future__ import annotations

import secrets

import pytest

from finmatch_client import (
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
    etag_of,
)
from finmatch_client.models import (
    ApplicationCreate,
    ApplicationStatus,
    ConsentStatus,
    FirmUpdate,
)
from tests.client.conftest import World, firm_and_product, new_firm, unknown_fields

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_create_read_and_recreate_a_firm(world: World) -> None:
    body = new_firm()
    created = world.portal.firms.create(body)
    assert created.credit_code == body.credit_code
    assert created.size_class == "small"
    assert created.version == 1
    assert unknown_fields(created) == []

    read = world.portal.firms.get(created.id)
    assert read == created
    # The same credit code again updates the same firm (the API's natural key).
    again = world.portal.firms.create(body.model_copy(update={"employees": 46}))
    assert (again.id, again.employees, again.version) == (created.id, 46, 2)


def test_update_sends_the_version_read_as_if_match(world: World) -> None:
    firm = world.portal.firms.create(new_firm())
    updated = world.portal.firms.update(firm, FirmUpdate(employees=60))
    assert (updated.employees, updated.version) == (60, firm.version + 1)
    # Only the field set was sent: the rest is as it was.
    assert updated.annual_revenue_yuan == firm.annual_revenue_yuan

    # The copy read before that update is stale now: 412, nothing written.
    with pytest.raises(PreconditionFailed) as stale:
        world.portal.firms.update(firm, FirmUpdate(employees=70))
    assert stale.value.status == 412
    assert stale.value.request_id
    assert world.portal.firms.get(firm.id).employees == 60

    # By id: the ETag must be given; "*" overwrites whatever is current.
    with pytest.raises(PreconditionRequired):
        world.portal.firms.update(firm.id, FirmUpdate(employees=70))
    forced = world.portal.firms.update(firm.id, FirmUpdate(employees=70), if_match="*")
    assert forced.employees == 70
    assert etag_of(forced) == f'"{forced.version}"'


def test_bad_input_is_a_typed_error_naming_the_field(world: World) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        world.portal.firms.create(new_firm(town_code="441900999"))
    error = invalid.value
    assert (error.status, error.code, error.field) == (422, "validation_error", "town_code")
    assert "town" in error.errors[0].message
    assert error.request_id
    assert error.request_id in str(error)

    firm = world.portal.firms.create(new_firm())
    with pytest.raises(ValidationFailed) as negative:
        world.portal.firms.update(firm, FirmUpdate(employees=-1))
    assert negative.value.field == "employees"


def test_other_portals_firms_are_not_found(world: World) -> None:
    firm = world.portal.firms.create(new_firm())
    with pytest.raises(NotFound) as hidden:
        world.other_portal.firms.get(firm.id)
    assert (hidden.value.status, hidden.value.code) == (404, "not_found")
    assert hidden.value.request_id
    assert firm.id not in {f.id for f in world.other_portal.firms.list()}


def test_list_follows_cursors_over_several_pages(world: World) -> None:
    town = "441900105"  # 长安镇: only this test's firms
    mine = {world.portal.firms.create(new_firm(town_code=town)).id for _ in range(5)}
    listing = world.portal.firms.list(town_code=town, page_size=2)
    pages = list(listing.pages())
    assert [len(page.data) for page in pages] == [2, 2, 1]
    assert pages[-1].next_cursor is None
    assert {firm.id for firm in listing} == mine
    assert len(listing.collect(limit=3)) == 3


def test_bulk_import_reports_each_line_and_resumes(world: World) -> None:
    import_id = f"client-{secrets.token_hex(4)}"
    good = [new_firm(), new_firm()]
    bad = new_firm(employees=-5)
    first = world.portal.firms.bulk_import([*good, bad], import_id=import_id, batch_size=2)
    statuses = [(line.line, line.status) for line in first.lines]
    assert statuses == [(1, "created"), (2, "created"), (3, "invalid")]
    assert first.lines[2].errors
    assert first.lines[2].errors[0].field == "employees"
    assert not first.ok
    assert first.batches["committed"] == 1
    assert first.batches["rejected"] == 1
    assert unknown_fields(first) == []

    # The same import again with the line fixed: the committed batch is skipped.
    fixed = [*good, bad.model_copy(update={"employees": 5})]
    second = world.portal.firms.bulk_import(fixed, import_id=import_id, batch_size=2)
    assert [line.status for line in second.lines] == [
        "already_committed",
        "already_committed",
        "created",
    ]
    assert second.ok
    assert second.lines[2].id is not None
    assert world.portal.firms.get(second.lines[2].id).employees == 5


def test_matches_near_misses_application_and_consent(world: World) -> None:
    firm, product = firm_and_product(world)
    matches = world.portal.firms.matches(firm.id, lang="en")
    assert unknown_fields(matches) == []
    assert matches.firm_id == firm.id
    assert not matches.degraded
    ranked = {m.product_id: m for m in matches.ranked}
    assert product.id in ranked
    assert ranked[product.id].reasons
    assert ranked[product.id].cost.amount_yuan > 0

    # A firm without patents misses the IP-pledge product, and is told what it lacks.
    lacking = world.portal.firms.create(new_firm(invention_patents=0, utility_patents=0))
    near = {m.product_id: m for m in world.portal.firms.matches(lacking.id).near_misses}
    assert product.id in near
    assert [u.code for u in near[product.id].unmet] == ["min_patents"]

    application = world.portal.applications.create(
        ApplicationCreate(
            firm_id=firm.id,
            product_id=product.id,
            requested_amount_yuan=2_000_000,
            requested_term_months=12,
            consent_share_profile=True,
        )
    )
    assert application.status is ApplicationStatus.SUBMITTED
    assert application.eligibility.status == "eligible"
    assert world.portal.applications.get(application.id) == application
    mine = world.portal.applications.list(firm_id=firm.id).collect()
    assert [a.id for a in mine] == [application.id]
    # The institution sees its lead and, with the consent, the firm.
    assert world.bank.firms.get(firm.id).id == firm.id

    consents = world.portal.consents.list(firm.id).collect()
    assert [(c.institution_id, c.application_ids) for c in consents] == [
        (product.institution_id, [application.id])
    ]
    revoked = world.portal.consents.revoke(firm.id, consents[0].id)
    assert revoked.status is ConsentStatus.REVOKED
    with pytest.raises(NotFound):
        world.bank.firms.get(firm.id)

    withdrawn = world.portal.applications.withdraw(application.id)
    assert withdrawn.status is ApplicationStatus.WITHDRAWN


def test_strict_application_refused_with_the_unmet_criteria(world: World) -> None:
    firm, product = firm_and_product(world)
    lacking = world.portal.firms.create(new_firm(invention_patents=0, utility_patents=0))
    with pytest.raises(ValidationFailed) as refused:
        world.portal.applications.create(
            ApplicationCreate(
                firm_id=lacking.id,
                product_id=product.id,
                requested_amount_yuan=1_000_000,
                requested_term_months=12,
                consent_share_profile=True,
                strict=True,
            )
        )
    assert refused.value.code == "not_eligible"
    assert firm.id != lacking.id


def test_erased_firm_is_gone(world: World) -> None:
    firm = world.portal.firms.create(new_firm())
    world.portal.firms.delete(firm.id)
    with pytest.raises(NotFound):
        world.portal.firms.get(firm.id)
