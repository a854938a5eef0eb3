"""Import of an institution's past decisions: per-line results, batches whole, resumable,
every bad line named, the credit code only hashed, in the training export and not in the
officials' statistics."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.matching.train import _split_by_time, training_set
from services.registry.config import RegistrySettings
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor, make_principal
from tests.registry.test_applications import apply

URL = "/v1/decisions/history"
# The registry's key in these tests: RegistrySettings' development default.
HASH_KEY = b"dev-only-change-me"


def past_line(product_id: int, **overrides: Any) -> dict[str, Any]:
    """A valid line: an approval decided a week after the firm applied, in 2025."""
    firm = data.firm()
    for key in ("name", "need_purpose"):  # a history line carries the features only
        firm.pop(key)
    line: dict[str, Any] = {
        "product_id": product_id,
        "firm": firm,
        "requested_amount_yuan": 2_000_000,
        "requested_term_months": 12,
        "submitted_at": "2025-06-03T09:30:00+08:00",
        "decided_at": "2025-06-10T16:00:00+08:00",
        "decision": {
            "outcome": "approved",
            "approved_amount_yuan": 1_500_000,
            "rate_bp": 400,
            "term_months": 12,
        },
    }
    return line | overrides


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def send(actor: Actor, body: bytes, import_id: str = "h1", **params: Any) -> Any:
    return actor.post(URL, params={"import_id": import_id, **params}, content=body)


def results(body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [orjson.loads(line) for line in body.splitlines()]
    return lines[:-1], lines[-1]


def export(actor: Actor) -> list[dict[str, Any]]:
    answer = actor.client.get("/internal/exports/training", headers={"X-Internal-Token": TOKEN})
    assert answer.status_code == 200
    return [orjson.loads(line) for line in answer.content.splitlines()]


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture
def product_id(bank: Actor) -> int:
    response = bank.post("/v1/products", json=data.product())
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_lines_are_imported_for_training_only(bank: Actor, product_id: int, engine: Engine) -> None:
    rejected = past_line(
        product_id,
        submitted_at="2025-01-05T10:00:00Z",
        decided_at="2025-01-06T10:00:00Z",
        decision={"outcome": "rejected", "rejection_reason": "insufficient_revenue"},
    )
    anonymous = past_line(product_id)
    del anonymous["firm"]["credit_code"]
    answer = send(bank, ndjson([past_line(product_id), rejected, anonymous]))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines, tail = results(answer.content)
    assert [(r["line"], r["status"], r["source"]) for r in lines] == [
        (1, "imported", "imported"),
        (2, "imported", "imported"),
        (3, "imported", "imported"),
    ]
    assert len({r["id"] for r in lines}) == 3
    assert tail["summary"] == {
        "lines": 3,
        "imported": 3,
        "duplicate": 0,
        "invalid": 0,
        "not_written": 0,
    }
    assert tail["batches"]["committed"] == 1
    assert count(engine, "imported_decision") == 3
    # No firm record, no application, no lead, no event.
    for table in ("firm", "application", "decision", "outbox_event"):
        assert count(engine, table) == 0
    assert bank.get("/v1/applications").json()["data"] == []


def test_export_has_imported_rows_in_the_live_shape_by_decided_at(
    portal: Actor, bank: Actor, product_id: int
) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm(5)).json()["id"]
    application = apply(portal, firm_id, product_id)
    decided = bank.post(
        f"/v1/applications/{application['id']}/decision",
        json={"outcome": "rejected", "rejection_reason": "other"},
    )
    assert decided.status_code == 201
    early = past_line(
        product_id, submitted_at="2019-09-01T08:00:00Z", decided_at="2019-09-02T08:00:00Z"
    )
    late = past_line(
        product_id,
        submitted_at="2025-03-01T08:00:00Z",
        decided_at="2025-03-02T08:00:00Z",
        decision={"outcome": "rejected", "rejection_reason": "high_leverage"},
    )
    assert send(bank, ndjson([late, early])).status_code == 200

    rows = export(bank)
    assert [r["source"] for r in rows] == ["imported", "imported", "live"]
    assert [r["decided_at"][:10] for r in rows[:2]] == ["2019-09-02", "2025-03-02"]
    live_keys = set(rows[2])
    assert all(set(r) == live_keys for r in rows)
    first = rows[0]
    assert first["application_id"] < 0  # never one of the applications' ids
    assert first["product_id"] == product_id
    assert first["approved"] is True
    assert first["outcome"] == "approved"
    assert first["rate_bp"] == 400
    # Age as of submitted_at (established 2015-03-01): 4.5 years then, 10 years for the other.
    assert first["firm"]["years_established"] == pytest.approx(4.5, abs=0.01)
    assert rows[1]["firm"]["years_established"] == pytest.approx(10.0, abs=0.01)
    assert first["firm"]["size_class"] == "small"
    assert first["firm"]["snapshot_at"].startswith("2019-09-01T08:00:00")
    assert "credit_code" not in first["firm"]
    assert first["product"]["id"] == product_id
    assert first["product"]["rate_max_bp"] == 480
    assert rows[1]["rejection_reason"] == "high_leverage"
    # One firm's imported rows (the same credit code) share a firm key; no live firm has it.
    assert rows[0]["firm_id"] == rows[1]["firm_id"] < 0
    assert rows[2]["firm_id"] == firm_id


def test_training_reads_both_kinds_and_holds_out_by_time(
    portal: Actor, bank: Actor, product_id: int
) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm(5)).json()["id"]
    application = apply(portal, firm_id, product_id)
    approval = {"outcome": "approved", "approved_amount_yuan": 1_000_000, "rate_bp": 400}
    decided = bank.post(
        f"/v1/applications/{application['id']}/decision", json=approval | {"term_months": 12}
    )
    assert decided.status_code == 201
    start = datetime(2024, 1, 1, tzinfo=UTC)
    lines = []
    for day in range(9):
        submitted = start + timedelta(days=30 * day)
        decision = (
            {"outcome": "rejected", "rejection_reason": "other"}
            if day % 2
            else approval | {"term_months": 12}
        )
        line = past_line(
            product_id,
            submitted_at=submitted.isoformat(),
            decided_at=(submitted + timedelta(days=3)).isoformat(),
            decision=decision,
        )
        line["firm"]["credit_code"] = data.firm(100 + day)["credit_code"]
        lines.append(line)
    assert send(bank, ndjson(lines)).status_code == 200

    rows = export(bank)
    dataset = training_set(rows)  # matching's reader, unchanged: it ignores `source`
    assert len(dataset) == 10
    fit, holdout = _split_by_time(dataset, 0.2)
    # The newest two by decided_at: the live decision (today) and the latest imported one.
    sources = {r["application_id"]: r["source"] for r in rows}
    assert sorted(sources[int(a)] for a in holdout.application_id) == ["imported", "live"]
    assert fit.decided_at.max() < holdout.decided_at.min()
    assert {sources[int(a)] for a in fit.application_id} == {"imported"}


def test_credit_code_is_stored_only_as_a_keyed_hash(
    bank: Actor, product_id: int, engine: Engine
) -> None:
    code = data.firm()["credit_code"]
    assert send(bank, ndjson([past_line(product_id)])).status_code == 200
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM imported_decision")).mappings().one()
        audit = conn.execute(sa.text("SELECT * FROM audit_log")).mappings().all()
    expected = hmac.new(HASH_KEY, code.encode(), hashlib.sha256).hexdigest()
    assert row["credit_code_hash"] == expected
    assert hashlib.sha256(code.encode()).hexdigest() != expected  # keyed, not a plain digest
    for stored in [row, *audit]:
        assert code not in str(dict(stored))
    assert code not in orjson.dumps(export(bank)).decode()


def test_the_hash_key_is_the_setting(bank: Actor, product_id: int, engine: Engine) -> None:
    bank.client.app.state.settings.credit_code_hash_key = "another-key"  # type: ignore[attr-defined]
    assert send(bank, ndjson([past_line(product_id)])).status_code == 200
    code = data.firm()["credit_code"]
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT credit_code_hash FROM imported_decision"))
        assert stored.scalar_one() == hmac.new(b"another-key", code.encode(), "sha256").hexdigest()


def _errors(bank: Actor, product_id: int, line: dict[str, Any] | bytes) -> list[dict[str, str]]:
    """The errors of a bad line sent after a good one: the batch is refused whole."""
    raw = line if isinstance(line, bytes) else orjson.dumps(line)
    good = orjson.dumps(past_line(product_id))
    answer = send(bank, good + b"\n" + raw + b"\n")
    assert answer.status_code == 200, answer.text
    lines, tail = results(answer.content)
    assert lines[0] == {"line": 1, "status": "not_written", "reason": "batch_rejected"}
    assert lines[1]["status"] == "invalid"
    assert tail["summary"]["imported"] == 0
    assert tail["batches"]["rejected"] == 1
    errors: list[dict[str, str]] = lines[1]["errors"]
    return errors


def _fields(errors: list[dict[str, str]]) -> list[str]:
    return [e["field"] for e in errors]


@pytest.fixture
def checked(bank: Actor, engine: Engine) -> Iterator[Actor]:
    yield bank
    assert count(engine, "imported_decision") == 0  # nothing of a refused batch is written


def test_future_dates_are_refused(checked: Actor, product_id: int) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    errors = _errors(checked, product_id, past_line(product_id, decided_at=tomorrow))
    assert _fields(errors) == ["decided_at"]
    assert "future" in errors[0]["message"]
    errors = _errors(
        checked, product_id, past_line(product_id, submitted_at=tomorrow, decided_at=tomorrow)
    )
    assert set(_fields(errors)) == {"submitted_at", "decided_at"}


def test_decided_before_submitted_is_refused(checked: Actor, product_id: int) -> None:
    line = past_line(
        product_id, submitted_at="2025-06-03T09:30:00Z", decided_at="2025-06-03T09:29:59Z"
    )
    errors = _errors(checked, product_id, line)
    assert _fields(errors) == ["decided_at"]
    assert "before submitted_at" in errors[0]["message"]


def test_times_need_an_offset_and_text(checked: Actor, product_id: int) -> None:
    assert _fields(
        _errors(checked, product_id, past_line(product_id, submitted_at="2025-06-03T09:30:00"))
    ) == ["submitted_at"]
    assert _fields(
        _errors(checked, product_id, past_line(product_id, decided_at=1_750_000_000))
    ) == ["decided_at"]


def test_another_institutions_product_is_not_found(
    checked: Actor, other_bank: Actor, product_id: int
) -> None:
    theirs = other_bank.post("/v1/products", json=data.product()).json()["id"]
    errors = _errors(checked, product_id, past_line(theirs))
    assert errors == [{"field": "product_id", "message": f"product {theirs} not found"}]
    missing = theirs + 1000
    errors = _errors(checked, product_id, past_line(missing))
    # The same answer as a product that does not exist: nothing tells that it does.
    assert errors == [{"field": "product_id", "message": f"product {missing} not found"}]


def test_an_archived_product_is_not_found(
    checked: Actor, portal: Actor, product_id: int, engine: Engine
) -> None:
    archived = checked.post("/v1/products", json=data.product()).json()["id"]
    firm_id = portal.post("/v1/firms", json=data.firm(3)).json()["id"]
    apply(portal, firm_id, archived)
    assert checked.delete(f"/v1/products/{archived}").status_code == 204
    errors = _errors(checked, product_id, past_line(archived))
    assert errors == [{"field": "product_id", "message": f"product {archived} not found"}]


def test_amounts_and_terms_outside_the_product_are_refused(checked: Actor, product_id: int) -> None:
    # The product lends 500,000–10,000,000 yuan over 6–36 months at 350–480 bp.
    errors = _errors(checked, product_id, past_line(product_id, requested_amount_yuan=20_000_000))
    assert _fields(errors) == ["requested_amount_yuan"]
    assert "500000–10000000" in errors[0]["message"]
    assert _fields(
        _errors(checked, product_id, past_line(product_id, requested_term_months=48))
    ) == ["requested_term_months"]
    too_cheap = {"outcome": "approved", "approved_amount_yuan": 1_000_000, "rate_bp": 300}
    errors = _errors(
        checked, product_id, past_line(product_id, decision=too_cheap | {"term_months": 3})
    )
    assert _fields(errors) == ["decision.term_months", "decision.rate_bp"]
    more = {"outcome": "approved", "approved_amount_yuan": 3_000_000, "rate_bp": 400}
    errors = _errors(
        checked, product_id, past_line(product_id, decision=more | {"term_months": 12})
    )
    assert _fields(errors) == ["decision.approved_amount_yuan"]


def test_the_decisions_rules_are_the_live_ones(checked: Actor, product_id: int) -> None:
    approved_without_rate = {"outcome": "approved", "approved_amount_yuan": 1, "term_months": 12}
    errors = _errors(checked, product_id, past_line(product_id, decision=approved_without_rate))
    assert _fields(errors) == ["decision.rate_bp"]
    errors = _errors(checked, product_id, past_line(product_id, decision={"outcome": "rejected"}))
    assert _fields(errors) == ["decision.rejection_reason"]
    unknown_reason = {"outcome": "rejected", "rejection_reason": "bad_vibes"}
    assert _fields(
        _errors(checked, product_id, past_line(product_id, decision=unknown_reason))
    ) == ["decision.rejection_reason"]


def test_unknown_fields_are_named(checked: Actor, product_id: int) -> None:
    assert _fields(_errors(checked, product_id, past_line(product_id, source="live"))) == ["source"]
    named = past_line(product_id)
    named["firm"]["name"] = "东莞市测试电子有限公司"
    assert _fields(_errors(checked, product_id, named)) == ["firm.name"]
    noted = past_line(product_id)
    noted["decision"]["approved"] = True
    assert _fields(_errors(checked, product_id, noted)) == ["decision.approved"]


def test_bad_firm_features_are_named(checked: Actor, product_id: int) -> None:
    line = past_line(product_id)
    line["firm"] |= {"employees": "45", "town_code": "123", "credit_code": "not-a-code"}
    assert set(_fields(_errors(checked, product_id, line))) == {
        "firm.employees",
        "firm.town_code",
        "firm.credit_code",
    }
    young = past_line(product_id)
    young["firm"]["established_on"] = "2025-07-01"  # after it applied (2025-06-03)
    assert _fields(_errors(checked, product_id, young)) == ["firm.established_on"]


def test_duplicate_keys_and_broken_json_are_line_errors(checked: Actor, product_id: int) -> None:
    raw = orjson.dumps(past_line(product_id))
    twice = raw.replace(b'"employees":45', b'"employees":45,"employees":5000')
    assert twice != raw
    errors = _errors(checked, product_id, twice)
    assert errors[0]["field"] == "firm.employees"
    assert errors[0]["type"] == "json_duplicate_key"
    assert _fields(_errors(checked, product_id, b'{"product_id": ')) == ["line"]
    assert _fields(_errors(checked, product_id, b"[1, 2]")) == ["line"]


def test_an_empty_body_is_refused(bank: Actor) -> None:
    answer = send(bank, b"\n\n")
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body"
    assert "past decision" in answer.json()["detail"]


def test_import_is_resumable_by_import_id(bank: Actor, product_id: int, engine: Engine) -> None:
    # Five past decisions (the same line five times would be one, and four duplicates).
    lines = [past_line(product_id, requested_amount_yuan=2_000_000 + n) for n in range(5)]
    broken = [*lines[:4], past_line(product_id, requested_term_months=99)]
    first = send(bank, ndjson(broken), import_id="resume", batch_size=2)
    out, tail = results(first.content)
    assert [r["status"] for r in out] == ["imported"] * 4 + ["invalid"]
    assert tail["batches"] == {"committed": 2, "rejected": 1, "already_committed": 0, "conflict": 0}
    assert count(engine, "imported_decision") == 4

    again = send(bank, ndjson(lines), import_id="resume", batch_size=2)
    out, tail = results(again.content)
    assert [r["status"] for r in out] == ["already_committed"] * 4 + ["imported"]
    assert tail["summary"] == {
        "lines": 5,
        "imported": 1,
        "duplicate": 0,
        "invalid": 0,
        "not_written": 0,
    }
    assert count(engine, "imported_decision") == 5

    changed = [past_line(product_id, requested_amount_yuan=3_000_000), *lines[1:]]
    conflict = send(bank, ndjson(changed), import_id="resume", batch_size=2)
    out, tail = results(conflict.content)
    assert out[0]["status"] == "conflict"
    assert out[0]["errors"][0]["field"] == "import_id"
    assert tail["batches"]["conflict"] == 1
    assert count(engine, "imported_decision") == 5


def test_only_institutions_import(
    portal: Actor, admin: Actor, product_id: int, engine: Engine
) -> None:
    official = make_principal(admin, "official")
    body = ndjson([past_line(product_id)])
    for who in (portal, admin, official):
        assert send(who, body).status_code == 404
    assert count(engine, "imported_decision") == 0


def test_imported_decisions_are_not_in_the_statistics(
    portal: Actor, bank: Actor, admin: Actor, product_id: int
) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm(5)).json()["id"]
    application = apply(portal, firm_id, product_id)
    approval = {"outcome": "approved", "approved_amount_yuan": 1_000_000, "rate_bp": 400}
    url = f"/v1/applications/{application['id']}/decision"
    assert bank.post(url, json=approval | {"term_months": 12}).status_code == 201
    official = make_principal(admin, "official")
    paths = [
        "/v1/stats/overview",
        "/v1/stats/breakdown?by=town",
        "/v1/stats/breakdown?by=month",
        "/v1/stats/institutions",
        "/v1/stats/products",
        "/v1/stats/targets",
    ]
    before = {path: official.get(path).json() for path in paths}
    assert before["/v1/stats/overview"]["applications"] == 1
    recent = datetime.now(UTC) - timedelta(hours=1)
    line = past_line(product_id, submitted_at=recent.isoformat(), decided_at=recent.isoformat())
    assert send(bank, ndjson([line] * 3)).status_code == 200
    after = {path: official.get(path).json() for path in paths}
    assert after == before


def test_a_product_with_imported_decisions_is_archived_not_deleted(
    bank: Actor, product_id: int
) -> None:
    assert send(bank, ndjson([past_line(product_id)])).status_code == 200
    assert bank.delete(f"/v1/products/{product_id}").status_code == 204
    rows = export(bank)
    assert [r["product_id"] for r in rows] == [product_id]


def test_imported_decisions_count_towards_training(
    portal: Actor, bank: Actor, product_id: int
) -> None:
    """The count matching checks before it trains (FINMATCH_MIN_TRAINING_ROWS) and watches for
    retraining: what the training export gives, the imported rows included."""

    def counted(**params: str) -> dict[str, Any]:
        answer = bank.client.get(
            "/internal/decisions/count", params=params, headers={"X-Internal-Token": TOKEN}
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    assert counted() == {"count": 0, "live": 0, "imported": 0, "latest_decided_at": None}
    firm_id = portal.post("/v1/firms", json=data.firm(5)).json()["id"]
    application = apply(portal, firm_id, product_id)
    decided = bank.post(
        f"/v1/applications/{application['id']}/decision",
        json={"outcome": "rejected", "rejection_reason": "other"},
    )
    assert decided.status_code == 201
    live_decided_at = decided.json()["decided_at"]
    before_import = datetime.now(UTC)
    lines = [
        past_line(product_id, submitted_at=f"2024-0{n}-03T09:30:00+08:00") for n in range(1, 4)
    ]
    assert send(bank, ndjson(lines)).status_code == 200
    rejection = {"outcome": "rejected", "rejection_reason": "other"}
    rejected_line = past_line(product_id, decision=rejection)
    assert send(bank, ndjson([rejected_line]), import_id="h2").status_code == 200

    everything = counted()
    assert (everything["count"], everything["live"], everything["imported"]) == (5, 1, 4)
    assert everything["count"] == len(export(bank))  # what training reads, no more, no less
    # The newest decision is the live one (the imported ones were decided in 2025).
    newest = datetime.fromisoformat(everything["latest_decided_at"])
    assert newest == datetime.fromisoformat(live_decided_at)
    # Since a time: live ones decided after it, imported ones imported after it, whatever
    # their (past) decided_at: both are new to training.
    since = counted(since=before_import.isoformat())
    assert (since["count"], since["live"], since["imported"]) == (4, 0, 4)
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert counted(since=later.isoformat())["count"] == 0


def test_a_deployment_must_set_the_hash_key() -> None:
    deployed = {"internal_token": "t", "database_url": "unused://", "environment": "production"}
    with pytest.raises(RuntimeError, match="FINMATCH_CREDIT_CODE_HASH_KEY"):
        RegistrySettings(**deployed).check_secrets()
    RegistrySettings(**deployed, credit_code_hash_key="a-real-key").check_secrets()
