"""The demo world lands in the registry whole, once, with keys that resolve."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.registry.seed.loader import seed_demo
from tests.registry.conftest import TOKEN


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_seed_writes_a_consistent_world_once(engine: Engine, client: TestClient) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    result = seed_demo(engine, n_firms=400, n_applications=500, now=now, progress=False)
    assert result.seeded
    assert scalar(engine, "SELECT count(*) FROM firm") == 400
    assert scalar(engine, "SELECT count(*) FROM application") == 500
    assert scalar(engine, "SELECT count(DISTINCT category) FROM product") == 12
    decided = scalar(engine, "SELECT count(*) FROM application WHERE status <> 'submitted'")
    assert scalar(engine, "SELECT count(*) FROM decision") == decided
    # Decisions never exceed the request, and come after the submission.
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM decision d JOIN application a ON a.id = d.application_id "
            "WHERE d.approved_amount_yuan > a.requested_amount_yuan "
            "OR d.decided_at < a.submitted_at",
        )
        == 0
    )
    # Every applicant was shown its product; some other firms were shown matches only.
    unshown = (
        "SELECT count(*) FROM application a WHERE NOT EXISTS (SELECT 1 FROM match_event m "
        "WHERE m.firm_id = a.firm_id AND m.product_id = a.product_id)"
    )
    assert scalar(engine, unshown) == 0
    browsers = (
        "SELECT count(DISTINCT m.firm_id) FROM match_event m WHERE NOT EXISTS "
        "(SELECT 1 FROM application a WHERE a.firm_id = m.firm_id)"
    )
    assert scalar(engine, browsers) > 0
    # The statistics' copy of each decision's amount and rate agrees with the decision.
    copied = (
        "SELECT count(*) FROM decision d JOIN application a ON a.id = d.application_id "
        "WHERE d.outcome = 'approved' AND (a.approved_amount_yuan IS DISTINCT FROM "
        "d.approved_amount_yuan OR a.approved_rate_bp IS DISTINCT FROM d.rate_bp)"
    )
    assert scalar(engine, copied) == 0
    # Each firm consented to the institutions it applied to: one consent per pair, every
    # application under the one of its firm and institution.
    pairs = "SELECT count(*) FROM (SELECT DISTINCT firm_id, institution_id FROM application) p"
    assert scalar(engine, "SELECT count(*) FROM consent") == scalar(engine, pairs)
    mislinked = (
        "SELECT count(*) FROM application a LEFT JOIN consent c ON c.id = a.consent_id "
        "WHERE c.id IS NULL OR c.firm_id <> a.firm_id OR c.institution_id <> a.institution_id"
    )
    assert scalar(engine, mislinked) == 0
    again = seed_demo(engine, n_firms=400, n_applications=500, now=now, progress=False)
    assert not again.seeded
    assert scalar(engine, "SELECT count(*) FROM firm") == 400

    assert set(result.keys) == {"portal", "admin", "official_city", "official_town", "institution"}
    for role_label, key in result.keys.items():
        digest = hashlib.sha256(key.encode()).hexdigest()
        resolved = client.post(
            "/internal/auth/resolve", json={"key_hash": digest}, headers={"X-Internal-Token": TOKEN}
        )
        assert resolved.status_code == 200, role_label
        assert resolved.json()["role"] == role_label.split("_")[0]

    export = client.get("/internal/exports/training", headers={"X-Internal-Token": TOKEN})
    assert len(export.content.splitlines()) == decided
