"""Consents (PIPL art. 15): granted by applying, listed and revoked by the firm's portal only;
a revocation ends the institution's reads of the firm and takes the profile out of its events."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.registry.config import RegistrySettings
from services.registry.main import create_app
from services.registry.migrate import alembic_config, upgrade
from services.registry.models import Application, AuditEntry, Consent, Principal
from tests.gateway.conftest import own_database
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor, make_institution, make_principal
from tests.registry.test_applications import apply, setup_firm_and_product
from tests.registry.test_outbox import deliveries, subscribe

REJECTED = {"outcome": "rejected", "rejection_reason": "other"}


def institution_of(engine: Engine, actor: Actor) -> int:
    with Session(engine) as session:
        principal = session.get(Principal, actor.id)
        assert principal is not None
        assert principal.institution_id is not None
        return principal.institution_id


def consents(portal: Actor, firm_id: int) -> list[dict[str, Any]]:
    answer = portal.get(f"/v1/firms/{firm_id}/consents")
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


def revoke(portal: Actor, firm_id: int, consent_id: int) -> dict[str, Any]:
    answer = portal.post(f"/v1/firms/{firm_id}/consents/{consent_id}/revoke")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_applying_grants_one_consent_per_institution(
    portal: Actor, bank: Actor, other_bank: Actor, engine: Engine
) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    second_product = bank.post("/v1/products", json=data.product(name="第二产品")).json()["id"]
    other_product = other_bank.post("/v1/products", json=data.product()).json()["id"]
    assert consents(portal, firm_id) == []

    first = apply(portal, firm_id, product_id)
    second = apply(portal, firm_id, second_product)
    elsewhere = apply(portal, firm_id, other_product)

    listed = consents(portal, firm_id)
    assert [row["institution_id"] for row in listed] == [
        institution_of(engine, bank),
        institution_of(engine, other_bank),
    ]
    assert [row["institution_name"] for row in listed] == ["东莞测试银行", "另一家银行"]
    assert [row["application_ids"] for row in listed] == [
        [first["id"], second["id"]],
        [elsewhere["id"]],
    ]
    assert [(row["status"], row["revoked_at"]) for row in listed] == [("active", None)] * 2
    assert [row["firm_id"] for row in listed] == [firm_id, firm_id]
    # Granted by the first application to that institution, when it was made.
    assert listed[0]["granted_at"] == first["consent_at"]
    assert listed[1]["granted_at"] == elsewhere["consent_at"]


def test_pages_of_consents(portal: Actor, admin: Actor, engine: Engine) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    banks = [
        make_principal(admin, "institution", institution_id=make_institution(admin, f"银行{i}"))
        for i in range(3)
    ]
    for bank in banks:
        apply(portal, firm_id, bank.post("/v1/products", json=data.product()).json()["id"])
    first = portal.get(f"/v1/firms/{firm_id}/consents", params={"limit": 2}).json()
    rest = portal.get(
        f"/v1/firms/{firm_id}/consents", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    names = [row["institution_name"] for row in first["data"] + rest["data"]]
    assert names == ["银行0", "银行1", "银行2"]
    assert rest["next_cursor"] is None


def test_only_the_firms_own_portal_reads_or_revokes(
    portal: Actor, other_portal: Actor, bank: Actor, admin: Actor
) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    apply(portal, firm_id, product_id)
    [consent] = consents(portal, firm_id)
    official = make_principal(admin, "official")
    for outsider in (other_portal, bank, admin, official):
        listed = outsider.get(f"/v1/firms/{firm_id}/consents")
        assert listed.status_code == 404, listed.text
        revoked = outsider.post(f"/v1/firms/{firm_id}/consents/{consent['id']}/revoke")
        assert revoked.status_code == 404, revoked.text
    assert consents(portal, firm_id) == [consent]  # the refusals changed nothing


def test_bad_consent_ids(portal: Actor, bank: Actor) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    other_firm = portal.post("/v1/firms", json=data.firm(2)).json()["id"]
    apply(portal, firm_id, product_id)
    apply(portal, other_firm, product_id)
    [own] = consents(portal, firm_id)
    [sibling] = consents(portal, other_firm)

    unknown = portal.post(f"/v1/firms/{firm_id}/consents/987654/revoke")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    # Another firm's consent (even one of the same portal's firms) is as absent.
    crossed = portal.post(f"/v1/firms/{firm_id}/consents/{sibling['id']}/revoke")
    assert crossed.status_code == 404
    assert crossed.json()["detail"] == f"consent {sibling['id']} not found"
    assert portal.get("/v1/firms/987654/consents").status_code == 404
    for bad in ("abc", "0", "-1", str(2**63)):
        refused = portal.post(f"/v1/firms/{firm_id}/consents/{bad}/revoke")
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["errors"][0]["field"] == "consent_id"
        assert portal.get(f"/v1/firms/{bad}/consents").status_code == 422
    assert consents(portal, firm_id) == [own]
    assert consents(portal, other_firm) == [sibling]


def test_revoking_after_a_decision_ends_the_institutions_reads(
    portal: Actor, bank: Actor, other_bank: Actor, engine: Engine
) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    other_product = other_bank.post("/v1/products", json=data.product()).json()["id"]
    application = apply(portal, firm_id, product_id)
    apply(portal, firm_id, other_product)
    decided = bank.post(f"/v1/applications/{application['id']}/decision", json=REJECTED)
    assert decided.status_code == 201, decided.text
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 200
    consent, other_consent = consents(portal, firm_id)

    revoked = revoke(portal, firm_id, consent["id"])
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] is not None
    assert revoked["application_ids"] == [application["id"]]
    gone = bank.get(f"/v1/firms/{firm_id}")
    assert gone.status_code == 404
    assert data.firm()["name"] not in gone.text
    # The decision record stays, and the application shows the consent ended.
    assert bank.get(f"/v1/applications/{application['id']}/decision").status_code == 200
    lead = bank.get(f"/v1/applications/{application['id']}").json()
    assert lead["status"] == "rejected"
    assert lead["consent_withdrawn_at"] == revoked["revoked_at"]
    assert lead["version"] == 3  # applied, decided, consent revoked
    # The other institution's consent is untouched.
    assert other_bank.get(f"/v1/firms/{firm_id}").status_code == 200
    assert consents(portal, firm_id) == [revoked, other_consent]

    # Idempotent: 200 with the same record, the first revoked_at kept, one audit entry.
    assert revoke(portal, firm_id, consent["id"]) == revoked
    with Session(engine) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.entity == "consent")).all()
    assert [(e.action, e.entity_id, e.principal_id) for e in entries] == [
        ("revoke", str(consent["id"]), portal.id)
    ]


def test_revoking_while_open_leaves_the_application_to_decide(portal: Actor, bank: Actor) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    [consent] = consents(portal, firm_id)
    revoke(portal, firm_id, consent["id"])
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 404
    lead = bank.get(f"/v1/applications/{application['id']}").json()
    assert lead["status"] == "submitted"
    decided = bank.post(f"/v1/applications/{application['id']}/decision", json=REJECTED)
    assert decided.status_code == 201, decided.text
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 404  # a decision does not restore it


def test_revocation_takes_the_profile_out_of_that_institutions_events(
    portal: Actor, bank: Actor, other_bank: Actor, engine: Engine
) -> None:
    leads = subscribe(bank, "application.submitted", "application.withdrawn")
    other_leads = subscribe(other_bank, "application.submitted")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    other_product = other_bank.post("/v1/products", json=data.product()).json()["id"]
    application = apply(portal, firm_id, product_id)
    apply(portal, firm_id, other_product)
    before = deliveries(engine)
    assert [(t, e, "firm" in d) for t, e, d in before] == [
        ("application.submitted", leads, True),
        ("application.submitted", other_leads, True),
    ]
    consent = consents(portal, firm_id)[0]

    revoke(portal, firm_id, consent["id"])
    after = deliveries(engine)
    # The pending delivery to the bank goes without the profile; the rest of it is unchanged.
    assert after[0][2] == {k: v for k, v in before[0][2].items() if k != "firm"}
    assert after[1] == before[1]  # the other institution keeps what it was given
    # No later event to the bank carries it either.
    assert portal.post(f"/v1/applications/{application['id']}/withdraw").status_code == 200
    [(kind, endpoint, withdrawn)] = deliveries(engine)[2:]
    assert (kind, endpoint, "firm" in withdrawn) == ("application.withdrawn", leads, False)


def test_a_new_application_after_revoking_grants_a_new_consent(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    leads = subscribe(bank, "application.submitted")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    first = apply(portal, firm_id, product_id)
    [old] = consents(portal, firm_id)
    revoked = revoke(portal, firm_id, old["id"])
    assert portal.post(f"/v1/applications/{first['id']}/withdraw").status_code == 200

    again = apply(portal, firm_id, product_id)
    listed = consents(portal, firm_id)
    assert listed[0] == revoked
    assert listed[1]["id"] != old["id"]
    assert listed[1]["status"] == "active"
    assert listed[1]["application_ids"] == [again["id"]]
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 200
    # The new submission carries the profile (consented anew); the revoked one still not.
    sent = [(e, d) for t, e, d in deliveries(engine) if t == "application.submitted"]
    assert [("firm" in d, d["application"]["id"]) for _, d in sent] == [
        (False, first["id"]),
        (True, again["id"]),
    ]
    assert {e for e, _ in sent} == {leads}
    # Revoking the new consent ends the reads again; the withdrawn application stays so.
    revoke(portal, firm_id, listed[1]["id"])
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 404


def test_erasing_the_firm_erases_its_consents(portal: Actor, bank: Actor, engine: Engine) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    assert portal.delete(f"/v1/firms/{firm_id}").status_code == 204
    with Session(engine) as session:
        assert session.exec(select(Consent)).all() == []
        kept = session.get(Application, application["id"])
        assert kept is not None
        assert (kept.firm_id, kept.consent_id) == (None, None)
    assert portal.get(f"/v1/firms/{firm_id}/consents").status_code == 404


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_migration_gives_existing_applications_their_consents(
    backend: str, tmp_path: Path
) -> None:
    with own_database(backend, tmp_path) as engine:
        settings = RegistrySettings(internal_token=TOKEN, database_url="unused://")
        with TestClient(create_app(settings, engine)) as client:
            with Session(engine) as session:
                root = Principal(role="admin", name="root")
                session.add(root)
                session.commit()
                admin = Actor(client, root.id)
            portal = make_principal(admin, "portal")
            bank = make_principal(admin, "institution", institution_id=make_institution(admin))
            other_bank = make_principal(
                admin, "institution", institution_id=make_institution(admin, "另一家银行")
            )
            firm, product = setup_firm_and_product(portal, bank)
            other_firm = portal.post("/v1/firms", json=data.firm(2)).json()["id"]
            erased = portal.post("/v1/firms", json=data.firm(3)).json()["id"]
            other_product = other_bank.post("/v1/products", json=data.product()).json()["id"]
            withdrawn = apply(portal, firm, product)
            assert portal.post(f"/v1/applications/{withdrawn['id']}/withdraw").status_code == 200
            again = apply(portal, firm, product)
            elsewhere = apply(portal, firm, other_product)
            other = apply(portal, other_firm, product)
            orphan = apply(portal, erased, product)
            assert portal.delete(f"/v1/firms/{erased}").status_code == 204
        engine.dispose()
        url = engine.url.render_as_string(hide_password=False)
        command.downgrade(alembic_config(url), "0011")
        with engine.connect() as conn:
            assert "consent" not in sa.inspect(conn).get_table_names()
        upgrade(url)

        with Session(engine) as session:
            rows = session.exec(select(Consent).order_by(col(Consent.firm_id))).all()
            linked = dict(
                session.exec(
                    select(Application.id, Application.consent_id).order_by(col(Application.id))
                ).all()
            )
        by_pair = {(c.firm_id, c.institution_id): c for c in rows}
        bank_institution, other_institution = (
            institution_of(engine, bank),
            institution_of(engine, other_bank),
        )
        assert sorted(by_pair) == sorted(
            [(firm, bank_institution), (firm, other_institution), (other_firm, bank_institution)]
        )
        assert all(c.revoked_at is None for c in rows)
        first = by_pair[(firm, bank_institution)]
        # Granted by the first application, the withdrawn one included.
        assert first.granted_at == datetime.fromisoformat(str(withdrawn["consent_at"]))
        assert linked == {
            withdrawn["id"]: first.id,
            again["id"]: first.id,
            elsewhere["id"]: by_pair[(firm, other_institution)].id,
            other["id"]: by_pair[(other_firm, bank_institution)].id,
            orphan["id"]: None,
        }
