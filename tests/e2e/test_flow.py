"""The whole job through the public API, with three real processes, PostgreSQL and Redis.

admin → institution, portal and official keys → products → firms (one, then an NDJSON bulk
import) → matches under the cold-start prior → application with consent → the institution's
lead and decisions → the official's statistics → a decided history → training → the portal's
matches from the promoted model. Request ids sent to the gateway show in the other services'
logs.

The journey runs once per module (and per xdist worker that gets any of these tests) in a
fixture, stage by stage; each test checks one stage or one property of what it recorded, so
the tests do not depend on running in order or in one process.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from services.registry.db import make_engine
from services.registry.seed.loader import seed_demo
from tests.e2e.cluster import Cluster
from tests.registry import data

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

TANGXIA = "441900116"  # 塘厦镇, the official's town and the firms'
# Enough decided history for a model (min_training_rows is 200), small enough to seed fast.
SEED_FIRMS, SEED_APPLICATIONS = 150, 320
SEQ = 50_000_000  # our firms' credit codes, clear of the seeded ones (0, 1, 2 …)


class Api:
    """One API key talking to the gateway over HTTP."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)


@dataclass
class Flow:
    """What the steps of the scenario pass on to each other."""

    cluster: Cluster
    admin: Api
    ids: dict[str, int] = field(default_factory=dict)
    apis: dict[str, Api] = field(default_factory=dict)
    request_ids: dict[str, str] = field(default_factory=dict)  # step → X-Request-ID sent
    trained: dict[str, Any] = field(default_factory=dict)
    matches_right_after_training: dict[str, Any] = field(default_factory=dict)
    seconds_until_new_model: float | None = None
    outcomes: dict[str, BaseException | None] = field(default_factory=dict)  # stage → error

    def check(self, stage: Callable[[Flow], None]) -> None:
        """Fail as the stage failed (with its traceback); fail if it never ran."""
        name = stage.__name__
        if name not in self.outcomes:
            failed = next(s for s, error in self.outcomes.items() if error is not None)
            pytest.fail(f"{name} did not run: {failed} failed before it")
        error = self.outcomes[name]
        if error is not None:
            raise error

    def require(self, stage: Callable[[Flow], None]) -> None:
        """Skip a test that only reads what ``stage`` recorded (its own test reports it)."""
        if self.outcomes.get(stage.__name__, RuntimeError()) is not None:
            pytest.skip(f"needs {stage.__name__}, which failed or did not run")


@pytest.fixture(scope="module")
def flow(cluster: Cluster) -> Iterator[Flow]:
    """The whole journey, stage after stage until one fails."""
    gateway = cluster.services["gateway"].url
    state = Flow(cluster=cluster, admin=Api(gateway, cluster.admin_key))
    for stage in STAGES:
        try:
            stage(state)
        except Exception as exc:
            state.outcomes[stage.__name__] = exc
            break
        state.outcomes[stage.__name__] = None
    yield state
    for api in [state.admin, *state.apis.values()]:
        api.close()


def request_id(flow: Flow, step: str) -> str:
    flow.request_ids[step] = f"e2e-{step}-{secrets.token_hex(6)}"
    return flow.request_ids[step]


def created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 201, f"{answer.request.method} {answer.request.url}: {answer.text}"
    body: dict[str, Any] = answer.json()
    return body


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, f"{answer.request.method} {answer.request.url}: {answer.text}"
    return answer.json()


def key_for(flow: Flow, role: str, name: str, **scope: Any) -> Api:
    principal = created(
        flow.admin.post("/v1/admin/principals", json={"role": role, "name": name, **scope})
    )
    key = created(flow.admin.post("/v1/admin/keys", json={"principal_id": principal["id"]}))
    api = Api(flow.admin.http.base_url, key["key"])
    flow.apis[role] = api
    return api


def portal_to_decision_to_statistics(flow: Flow) -> None:
    # Admin, with the bootstrap key only: an institution and keys for every kind of user.
    institution = created(
        flow.admin.post("/v1/admin/institutions", json={"name": "东莞e2e银行", "kind": "bank"})
    )
    bank = key_for(flow, "institution", "e2e信贷部", institution_id=institution["id"])
    portal = key_for(flow, "portal", "e2e粤信融门户")
    official = key_for(flow, "official", "e2e塘厦镇金融办", town_code=TANGXIA)

    # The institution lists an IP-pledge loan and a 政采贷.
    ip_loan = created(bank.post("/v1/products", json=data.product()))
    gov_loan = created(
        bank.post(
            "/v1/products",
            json=data.product(
                name="政采贷（e2e）",
                category="gov_procurement",
                description="凭政府采购合同融资",
                min_patents=0,
                collateral_kind="procurement_contract",
                amount_cap_basis="gov_procurement_contracts",
                requires_gov_procurement=True,
                interest_subsidy_pct=0,
                interest_subsidy_cap_yuan=0,
            ),
        )
    )
    listed = ok(bank.get("/v1/products", params={"institution_id": institution["id"]}))["data"]
    assert {p["id"] for p in listed} == {ip_loan["id"], gov_loan["id"]}

    # The portal submits one firm, then three more as an NDJSON bulk import.
    firm = created(portal.post("/v1/firms", json=data.firm(seq=SEQ + 1)))
    procurement = {"gov_procurement_contracts_yuan": 3_000_000, "invention_patents": 0}
    bulk_lines = [
        data.firm(seq=SEQ + 2, **procurement),
        data.firm(seq=SEQ + 3, employees=12, annual_revenue_yuan=4_000_000),
        data.firm(seq=SEQ + 4, invention_patents=0, utility_patents=0),
    ]
    imported = portal.post(
        "/v1/firms/bulk",
        params={"import_id": "e2e-import-1"},
        content=b"\n".join(orjson.dumps(line) for line in bulk_lines) + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert imported.status_code == 200, imported.text
    *results, summary = [orjson.loads(line) for line in imported.content.splitlines()]
    assert [r["status"] for r in results] == ["created"] * 3, results
    assert summary["summary"]["created"] == 3
    codes = {f["credit_code"]: f["id"] for f in ok(portal.get("/v1/firms"))["data"]}
    assert len(codes) == 4
    procurement_firm = codes[bulk_lines[0]["credit_code"]]

    # Matches under the cold-start prior, with reasons.
    rid = request_id(flow, "matches")
    matches = ok(portal.get(f"/v1/firms/{firm['id']}/matches", headers={"X-Request-ID": rid}))
    assert matches["is_prior"] is True
    assert matches["degraded"] is False
    ranked = {r["product_id"]: r for r in matches["ranked"]}
    assert ip_loan["id"] in ranked, matches
    top = ranked[ip_loan["id"]]
    assert top["product"]["category"] == "ip_pledge"
    assert top["reasons"], top
    assert any("专利" in reason["message"] for reason in top["reasons"])
    assert top["approval_probability"] is None  # the prior has no learned probability
    missing = {m["product_id"]: m for m in matches["near_misses"]}
    assert missing[gov_loan["id"]]["unmet"][0]["code"] == "requires_gov_procurement"
    gov_matches = ok(portal.get(f"/v1/firms/{procurement_firm}/matches"))
    assert gov_loan["id"] in {r["product_id"] for r in gov_matches["ranked"]}, gov_matches

    # Two applications with consent; the institution sees the leads and decides.
    rid = request_id(flow, "apply")
    applied = created(
        portal.post(
            "/v1/applications",
            json={
                "firm_id": firm["id"],
                "product_id": ip_loan["id"],
                "requested_amount_yuan": 2_000_000,
                "requested_term_months": 12,
                "consent_share_profile": True,
            },
            headers={"X-Request-ID": rid},
        )
    )
    applied_gov = created(
        portal.post(
            "/v1/applications",
            json={
                "firm_id": procurement_firm,
                "product_id": gov_loan["id"],
                "requested_amount_yuan": 1_000_000,
                "requested_term_months": 6,
                "consent_share_profile": True,
            },
        )
    )
    leads = ok(bank.get("/v1/applications"))["data"]
    assert {lead["id"] for lead in leads} == {applied["id"], applied_gov["id"]}
    assert ok(bank.get(f"/v1/firms/{firm['id']}"))["id"] == firm["id"]  # consent shares it
    assert bank.get(f"/v1/firms/{codes[bulk_lines[1]['credit_code']]}").status_code == 404
    created(
        bank.post(
            f"/v1/applications/{applied['id']}/decision",
            json={
                "outcome": "approved",
                "approved_amount_yuan": 1_500_000,
                "rate_bp": 380,
                "term_months": 12,
            },
        )
    )
    created(
        bank.post(
            f"/v1/applications/{applied_gov['id']}/decision",
            json={"outcome": "rejected", "rejection_reason": "incomplete_documents"},
        )
    )
    mine = {a["id"]: a for a in ok(portal.get("/v1/applications"))["data"]}
    assert mine[applied["id"]]["status"] == "approved"
    assert mine[applied_gov["id"]]["status"] == "rejected"

    # The town official's statistics count it.
    overview = ok(official.get("/v1/stats/overview"))
    assert (overview["applications"], overview["approvals"], overview["rejections"]) == (2, 1, 1)
    assert overview["approved_amount_yuan"] == 1_500_000
    assert overview["approval_rate"] == 0.5
    # Two firms only: each category's cell is there with its figures withheld.
    by_category = ok(official.get("/v1/stats/breakdown", params={"by": "category"}))
    assert {(row["key"], row["suppressed"]) for row in by_category["rows"]} == {
        ("ip_pledge", True),
        ("gov_procurement", True),
    }
    league = ok(official.get("/v1/stats/institutions"))["rows"]
    assert [row["suppressed"] for row in league] == [True]
    registered = ok(official.get("/v1/stats/firms"))
    assert (registered["town_code"], registered["firms"]) == (TANGXIA, 4), registered

    flow.ids |= {"firm": firm["id"], "ip_loan": ip_loan["id"], "gov_loan": gov_loan["id"]}


def training_promotes_a_model_the_portal_then_gets(flow: Flow) -> None:
    portal = flow.apis["portal"]
    firm_id = flow.ids["firm"]

    # A decided history, as the synthetic Dongguan world writes it, straight into the database.
    engine = make_engine(flow.cluster.database_url)
    try:
        seeded = seed_demo(
            engine, n_firms=SEED_FIRMS, n_applications=SEED_APPLICATIONS, progress=False
        )
    finally:
        engine.dispose()
    assert seeded.seeded

    rid = request_id(flow, "train")
    started = time.monotonic()
    queued = flow.admin.post("/v1/admin/models/train", json={}, headers={"X-Request-ID": rid})
    assert queued.status_code == 202, queued.text
    job_url = queued.headers["location"]
    # A job: polled until it ends (the admin's poll of a promoted job also tells this gateway
    # of the new model at once).
    while (job := ok(flow.admin.get(job_url)))["status"] in {"queued", "running"}:
        assert time.monotonic() - started < 600, job
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    trained = job["outcome"]
    flow.trained = trained | {"seconds": time.monotonic() - started, "job": job}
    assert trained["promoted"] is True, trained
    assert trained["champion_version"] is None  # the first model replaces the rule prior
    assert job["refit"]["rows"] > job["metrics"]["n"]  # refitted on every row, holdout too
    version = trained["version"]
    models = ok(flow.admin.get("/v1/admin/models"))
    assert version in {m["version"] for m in models}, models

    # The very next request for the firm (its prior answer is cached in Redis).
    flow.matches_right_after_training = ok(portal.get(f"/v1/firms/{firm_id}/matches"))

    # Within the gateway's model poll (10 s, so 25 s under load), the learned model answers.
    promoted_at = time.monotonic()
    while True:
        matches = ok(portal.get(f"/v1/firms/{firm_id}/matches"))
        if matches["model_version"] == version or time.monotonic() > promoted_at + 25:
            break
        time.sleep(0.25)
    assert matches["model_version"] == version, matches
    flow.seconds_until_new_model = time.monotonic() - promoted_at
    assert matches["is_prior"] is False
    assert matches["degraded"] is False
    assert matches["ranked"], matches
    for item in matches["ranked"]:
        assert 0.0 < item["approval_probability"] < 1.0, item
    assert flow.ids["ip_loan"] in {r["product_id"] for r in matches["ranked"]}


STAGES = (portal_to_decision_to_statistics, training_promotes_a_model_the_portal_then_gets)


def test_portal_to_decision_to_statistics(flow: Flow) -> None:
    flow.check(portal_to_decision_to_statistics)


def test_training_promotes_a_model_the_portal_then_gets(flow: Flow) -> None:
    flow.check(training_promotes_a_model_the_portal_then_gets)


def test_matches_right_after_promotion_name_the_new_model(flow: Flow) -> None:
    """The next matches after a promotion come from the new model, not the cached prior answer
    (the gateway used to learn the model version only from its 10 s poll)."""
    flow.require(training_promotes_a_model_the_portal_then_gets)
    answer = flow.matches_right_after_training
    assert (answer["model_version"], answer["is_prior"]) == (flow.trained["version"], False), (
        f"stale for {flow.seconds_until_new_model:.1f} s more"
    )


def test_request_id_reaches_the_registry_audit_trail(flow: Flow) -> None:
    """The id sent with the application is the one the registry's audit log keeps."""
    flow.require(portal_to_decision_to_statistics)
    engine = make_engine(flow.cluster.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT action, entity FROM audit_log WHERE request_id = :rid"),
                {"rid": flow.request_ids["apply"]},
            ).all()
    finally:
        engine.dispose()
    assert [(row.action, row.entity) for row in rows] == [("apply", "application")], rows


# Which services an X-Request-ID sent to the gateway should reach, by step of the scenario.
REACHES = {
    "matches": ("gateway", "registry", "matching"),  # firm and catalogue, then ranking
    "apply": ("gateway", "registry"),
    "train": ("gateway", "matching", "registry"),  # matching reads the export from the registry
}


def test_request_ids_reach_the_other_services_logs(flow: Flow) -> None:
    """Each service's log names the X-Request-ID the gateway was sent, along the whole path."""
    flow.require(training_promotes_a_model_the_portal_then_gets)
    services = flow.cluster.services
    missing = [
        f"{step} ({flow.request_ids[step]}) not in the {name} log"
        for step, names in REACHES.items()
        for name in names
        if flow.request_ids[step] not in services[name].log()
    ]
    assert not missing, missing
