"""The gateway's OpenAPI schema, fuzzed with schemathesis against the in-process stack (SQLite).

Every operation of the public API gets generated requests, valid and invalid, under a fixed
seed (deterministic, no example database), sent with a real key of the role that uses it.
Checks: never a 5xx; every answer conforms to its documented schema and media type; data that
violates the schema is refused. Hand-written hostile input (NUL bytes, integers past
64 bits, over-long strings) must get a 4xx problem on every backend.

FINMATCH_SCHEMA_MAX_EXAMPLES raises the examples per operation for a deeper (nightly) run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from schemathesis.config import HealthCheck
from schemathesis.python.asgi import get_client, shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)
from sqlmodel import Session

from services.registry.api.access import issue_key
from services.registry.db import make_engine
from services.registry.migrate import upgrade
from services.registry.models import Principal
from services.registry.seed.loader import seed_demo
from tests.gateway.conftest import Stack, build_stack
from tests.registry import data

SEED = 20201218
MAX_EXAMPLES = int(os.environ.get("FINMATCH_SCHEMA_MAX_EXAMPLES", "20"))
# No rate limit gets in the way of a few thousand generated requests.
UNLIMITED = {f"rate_limit_{role}": 10**9 for role in ("portal", "institution", "official", "admin")}

# schemathesis parametrizes from a schema object at import; its lazy loader
# (schemathesis.pytest.from_fixture) breaks under pytest 9 ('Function' object has no
# attribute '_nodeid'). So the stack is built here over an engine that connects lazily; the
# `world` fixture migrates and seeds its SQLite file before the first request.
_DB_DIR = Path(tempfile.mkdtemp(prefix="finmatch-schema-"))
atexit.register(shutil.rmtree, _DB_DIR, True)
ENGINE = make_engine(f"sqlite:///{_DB_DIR / 'registry.db'}")
GATEWAY = build_stack(ENGINE, **UNLIMITED)[0].app

# The bulk import's NDJSON body is sent as text: generated strings become lines to validate.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schemathesis.serializer.alias("text/csv", "text/plain")
schema = schemathesis.openapi.from_dict(
    GATEWAY.openapi(),
    config=schemathesis.Config(seed=SEED, suppress_health_check=[HealthCheck.all]),
)
schema.app = GATEWAY  # calls go to the app in-process, as with schemathesis.openapi.from_asgi
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, deterministic=True, database="none", allow_x00=True
)


@dataclass
class World:
    keys: dict[str, str]
    protected_key_ids: set[int]
    spare_key_id: int


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """A small seeded Dongguan (firms, products, decided applications) under the gateway."""
    upgrade(str(ENGINE.url))
    seeded = seed_demo(ENGINE, n_firms=40, n_applications=60, seed=SEED, progress=False)
    assert seeded.seeded
    with Session(ENGINE, expire_on_commit=False) as session:
        # A key the admin may revoke: generated revocations of the keys in use go to it.
        holder = Principal(role="portal", name="spare key holder")
        session.add(holder)
        session.flush()
        _key, spare = issue_key(session, holder, label="spare")
        session.commit()
    assert spare.id is not None
    try:
        yield World(
            keys=seeded.keys, protected_key_ids=set(range(1, spare.id)), spare_key_id=spare.id
        )
    finally:
        shutdown_lifespans()  # the gateway's lifespan, started by the first call
        ENGINE.dispose()


def role_for(method: str, path: str) -> str:
    """The role that uses an operation, so that requests get past its role check."""
    if path.startswith("/v1/admin"):
        return "admin"
    if path.startswith(("/v1/stats", "/v1/registers")):
        return "official_city"
    if path.startswith("/v1/products") and method != "GET":
        return "institution"
    if path.endswith("/decision") and method == "POST":
        return "institution"
    if path == "/v1/decisions/history":
        return "institution"
    return "portal"


def _call(case: Any, world: World) -> tuple[Any, dict[str, str]]:
    method, path = case.operation.method.upper(), case.operation.path
    if path == "/v1/admin/keys/{key_id}/revoke":
        key_id = case.path_parameters.get("key_id")
        if isinstance(key_id, int) and key_id in world.protected_key_ids:
            case.path_parameters["key_id"] = world.spare_key_id
    headers = {"Authorization": f"Bearer {world.keys[role_for(method, path)]}"}
    return case.call(headers=headers), headers


@schema.parametrize()
def test_no_server_error_and_documented_success(case: Any, world: World) -> None:
    response, headers = _call(case, world)
    checks = [
        schemathesis.checks.not_a_server_error,
        response_schema_conformance,
        content_type_conformance,
    ]
    case.validate_response(response, checks=checks, headers=headers)


# Excluded from the refusal check (still in the no-5xx one): the bulk import's body is text,
# and a generated "wrong type" (an object where the schema says string) is serialized as text
# that is a well-formed NDJSON line, answered per line. Its empty body is refused (see
# test_lax_json_is_refused).
TEXT_BODIES = {
    ("POST", "/v1/firms/bulk"),
    ("POST", "/v1/decisions/history"),
    ("PUT", "/v1/registers/{kind}"),
    ("POST", "/v1/registers/{kind}"),
}


def _text_body(ctx: Any) -> bool:
    return (ctx.operation.method.upper(), ctx.operation.path) in TEXT_BODIES


@schema.exclude(_text_body).parametrize()
def test_schema_violations_are_refused(case: Any, world: World) -> None:
    response, headers = _call(case, world)
    checks = [schemathesis.checks.not_a_server_error, negative_data_rejection]
    case.validate_response(response, checks=checks, headers=headers)


DATE_AS_NUMBER = {"by": "town", "date_to": "0"}  # read as 1970-01-01, a Unix time
LAX_CASES = [
    pytest.param("institution", "POST", "/v1/products", {"json": data.product(active=0)}),
    pytest.param("institution", "POST", "/v1/products", {"json": data.product(requires_green="1")}),
    pytest.param("portal", "POST", "/v1/firms", {"json": data.firm(seq=900_007, is_high_tech=1)}),
    pytest.param("portal", "POST", "/v1/firms", {"json": data.firm(seq=900_008, employees="45")}),
    pytest.param("portal", "POST", "/v1/firms/bulk", {"params": {"import_id": "empty"}}),
    pytest.param(
        "institution", "POST", "/v1/decisions/history", {"params": {"import_id": "empty"}}
    ),
]
LAX_IDS = [
    "bool-0",
    "bool-string",
    "bool-1",
    "int-string",
    "bulk-without-body",
    "history-without-body",
]


@pytest.mark.parametrize(("role", "method", "url", "kwargs"), LAX_CASES, ids=LAX_IDS)
def test_lax_json_is_refused(
    world: World, role: str, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    """Found by schemathesis (negative_data_rejection): schema-violating input got a 2xx
    (pydantic's lax mode coerced it; the bulk body is documented as required)."""
    with get_client(GATEWAY) as client:
        headers = {"Authorization": f"Bearer {world.keys[role]}"}
        answer = client.request(method, url, headers=headers, **kwargs)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])


def test_a_date_filter_given_as_a_number_is_refused(world: World) -> None:
    """Statistics filters are calendar days now: "0" is not read as the Unix epoch."""
    with get_client(GATEWAY) as client:
        headers = {"Authorization": f"Bearer {world.keys['official_city']}"}
        answer = client.get("/v1/stats/breakdown", headers=headers, params=DATE_AS_NUMBER)
    assert answer.status_code == 422, answer.text
    assert "date_to" in answer.text


def test_error_answers_are_documented(world: World) -> None:
    """A 422 is the documented problem+json (it was documented as FastAPI's HTTPValidationError
    in application/json)."""
    case = schema["/v1/firms"]["POST"].Case(body={"name": 1})
    response, headers = _call(case, world)
    assert response.status_code == 422
    case.validate_response(
        response, checks=[response_schema_conformance, content_type_conformance], headers=headers
    )


# --- hand-written hostile input, on every backend --------------------------------------------

BIG = (2**63, 10**30)
LONG = "x" * 100_000  # in bodies
LONG_URL = "x" * 5_000  # in paths and queries (a real server caps the request line near 8 KB)
NUL = "a\x00b"


def _hostile_requests(ids: dict[str, int]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(role, method, url, httpx kwargs) of requests that must all get a 4xx."""
    firm, product, application = ids["firm"], ids["product"], ids["application"]
    firm_body = data.firm(seq=900)
    product_body = data.product()
    application_body = {
        "firm_id": firm,
        "product_id": product,
        "requested_amount_yuan": 1_000_000,
        "requested_term_months": 12,
        "consent_share_profile": True,
    }
    approved = {
        "outcome": "approved",
        "approved_amount_yuan": 1_000_000,
        "rate_bp": 400,
        "term_months": 12,
    }
    out: list[tuple[str, str, str, dict[str, Any]]] = []

    def body(role: str, method: str, url: str, base: dict[str, Any], **fields: Any) -> None:
        out.append((role, method, url, {"json": base | fields}))

    def query(role: str, url: str, **params: Any) -> None:
        out.append((role, "GET", url, {"params": params}))

    # Bodies: NUL bytes, integers past 64 bits, over-long strings.
    for field in ("name", "need_purpose", "credit_code", "town_code", "industry_section"):
        body("portal", "POST", "/v1/firms", firm_body, **{field: NUL})
    for big in BIG:
        for field in ("employees", "annual_revenue_yuan", "need_amount_yuan", "industry_division"):
            body("portal", "POST", "/v1/firms", firm_body, **{field: big})
        body("portal", "PATCH", f"/v1/firms/{firm}", {}, employees=big)
        body("institution", "POST", "/v1/products", product_body, amount_max_yuan=big)
        body("institution", "PATCH", f"/v1/products/{product}", {}, rate_max_bp=big)
        body("portal", "POST", "/v1/applications", application_body, firm_id=big)
        body("portal", "POST", "/v1/applications", application_body, product_id=big)
        body("portal", "POST", "/v1/applications", application_body, requested_amount_yuan=big)
        body(
            "institution",
            "POST",
            f"/v1/applications/{application}/decision",
            approved,
            approved_amount_yuan=big,
        )
        body("admin", "POST", "/v1/admin/keys", {}, principal_id=big)
        institution = {"role": "institution", "name": "x", "institution_id": big}
        body("admin", "POST", "/v1/admin/principals", institution)
    for field in ("name", "need_purpose"):
        body("portal", "POST", "/v1/firms", firm_body, **{field: LONG})
    body("portal", "PATCH", f"/v1/firms/{firm}", {}, name=NUL)
    body("institution", "POST", "/v1/products", product_body, name=NUL)
    body("institution", "POST", "/v1/products", product_body, description=LONG)
    body("institution", "POST", "/v1/products", product_body, elig_town_codes=[NUL])
    body("institution", "PATCH", f"/v1/products/{product}", {}, description=NUL)
    decision = f"/v1/applications/{application}/decision"
    body("institution", "POST", decision, approved, note=NUL)
    body("institution", "POST", decision, approved, note=LONG)
    body("admin", "POST", "/v1/admin/institutions", {"kind": "bank"}, name=NUL)
    body("admin", "POST", "/v1/admin/institutions", {"kind": "bank"}, name=LONG)
    body("admin", "POST", "/v1/admin/principals", {"role": "official"}, name="x", town_code=NUL)
    body("admin", "POST", "/v1/admin/principals", {"role": "portal"}, name=NUL)
    body("admin", "POST", "/v1/admin/keys", {"principal_id": 1}, label=NUL)
    # Paths.
    for big in BIG:
        for role, method, url in [
            ("portal", "GET", f"/v1/firms/{big}"),
            ("portal", "PATCH", f"/v1/firms/{big}"),
            ("portal", "DELETE", f"/v1/firms/{big}"),
            ("portal", "GET", f"/v1/firms/{big}/matches"),
            ("portal", "GET", f"/v1/products/{big}"),
            ("institution", "DELETE", f"/v1/products/{big}"),
            ("portal", "GET", f"/v1/applications/{big}"),
            ("portal", "POST", f"/v1/applications/{big}/withdraw"),
            ("institution", "POST", f"/v1/applications/{big}/decision"),
            ("portal", "GET", f"/v1/applications/{big}/decision"),
            ("admin", "POST", f"/v1/admin/keys/{big}/revoke"),
        ]:
            kwargs = {"json": approved} if url.endswith("/decision") and method == "POST" else {}
            out.append((role, method, url, kwargs))
    for role, method, url in [
        ("portal", "GET", "/v1/firms/%00"),
        ("portal", "GET", "/v1/firms/" + "9" * 5_000),
        ("portal", "GET", "/v1/products/1%002"),
        ("admin", "POST", "/v1/admin/models/a%00b/promote"),
        ("admin", "POST", "/v1/admin/models/" + "v" * 5_000 + "/promote"),
    ]:
        out.append((role, method, url, {}))
    # Queries.
    for big in BIG:
        query("portal", "/v1/firms", limit=big)
        query("portal", "/v1/products", institution_id=big)
        query("portal", "/v1/applications", firm_id=big)
        query("portal", "/v1/applications", product_id=big)
        query("portal", f"/v1/firms/{firm}/matches", amount_yuan=big)
        query("portal", f"/v1/firms/{firm}/matches", term_months=big)
        query("official_city", "/v1/stats/breakdown", by="town", date_from=str(big))
        bulk = {"params": {"import_id": "x", "batch_size": big}, "content": b""}
        out.append(("portal", "POST", "/v1/firms/bulk", bulk))
    for name in ("credit_code", "town_code", "cursor"):
        query("portal", "/v1/firms", **{name: NUL})
        query("portal", "/v1/firms", **{name: LONG_URL})
    query("portal", "/v1/products", town_code=NUL)
    query("portal", "/v1/products", cursor=LONG_URL)
    query("portal", "/v1/applications", status=NUL)
    query("portal", f"/v1/firms/{firm}/matches", lang=NUL)
    query("official_city", "/v1/stats/breakdown", by="town", town_code=NUL)
    query("official_city", "/v1/stats/breakdown", by=NUL)
    query("official_city", "/v1/stats/breakdown", by="town", date_to=LONG_URL)
    query("official_city", "/v1/stats/firms", town_code=NUL)
    for import_id in (NUL, LONG_URL):
        out.append(("portal", "POST", "/v1/firms/bulk", {"params": {"import_id": import_id}}))
    # Headers.
    long_key = {"Idempotency-Key": "k" * 1_000}
    out.append(("portal", "POST", "/v1/firms", {"json": firm_body, "headers": long_key}))
    long_etag = {"If-Match": '"' + "1" * 1_000 + '"'}
    out.append(("portal", "PATCH", f"/v1/firms/{firm}", {"json": {}, "headers": long_etag}))
    return out


def test_hostile_input_gets_a_4xx(stack: Stack) -> None:
    """NUL bytes, 2**63 and 10**30, and over-long strings: a 4xx problem, never a 5xx or 2xx."""
    bank = stack.institution("东莞测试银行")
    portal = stack.principal("portal")
    apis = {
        "admin": stack.admin,
        "portal": portal,
        "institution": bank,
        "official_city": stack.principal("official"),
    }
    product = bank.post("/v1/products", json=data.product())
    firm = portal.post("/v1/firms", json=data.firm())
    assert product.status_code == firm.status_code == 201, (product.text, firm.text)
    applied = portal.post(
        "/v1/applications",
        json={
            "firm_id": firm.json()["id"],
            "product_id": product.json()["id"],
            "requested_amount_yuan": 1_000_000,
            "requested_term_months": 12,
            "consent_share_profile": True,
        },
    )
    assert applied.status_code == 201, applied.text
    ids = {"firm": firm.json()["id"], "product": product.json()["id"]}
    ids["application"] = applied.json()["id"]

    wrong: list[str] = []
    requests = _hostile_requests(ids)
    for role, method, url, kwargs in requests:
        answer = apis[role].request(method, url, **kwargs)
        problem = answer.headers.get("content-type", "").startswith("application/problem+json")
        if not 400 <= answer.status_code < 500 or not problem:
            sent = {k: repr(v)[:200] for k, v in kwargs.items()}
            answered = f"{answer.status_code} {answer.text[:300]}"
            wrong.append(f"{role} {method} {url[:120]} {sent} -> {answered}")
    assert not wrong, f"{len(wrong)} of {len(requests)} hostile requests:\n" + "\n".join(wrong)
    # Nothing of it was written.
    firms = portal.get("/v1/firms").json()["data"]
    assert [f["id"] for f in firms] == [ids["firm"]]
    assert firms[0]["employees"] == data.firm()["employees"]


def test_hostile_ndjson_lines_are_invalid_and_nothing_is_written(stack: Stack) -> None:
    """The bulk import answers per line: each hostile line is invalid, its batch not written."""
    portal = stack.principal("portal")
    big = orjson.dumps(data.firm(seq=3)).replace(
        b'"employees":45', b'"employees":' + str(2**63).encode()
    )
    lines = [
        orjson.dumps(data.firm(seq=1)),
        orjson.dumps(data.firm(seq=2, name=NUL)),
        big,
        orjson.dumps(data.firm(seq=4, need_purpose=LONG)),
        b'{"employees": 1e400}',
        b"\x00",
    ]
    answer = portal.post(
        "/v1/firms/bulk",
        params={"import_id": "hostile"},
        content=b"\n".join(lines) + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    *results, summary = [orjson.loads(line) for line in answer.content.splitlines()]
    assert [r["status"] for r in results] == ["not_written"] + ["invalid"] * 5, results
    assert summary["summary"]["created"] == 0
    assert portal.get("/v1/firms").json()["data"] == []


# --- found by the deeper run (FINMATCH_SCHEMA_MAX_EXAMPLES=150) ------------------------------


def test_a_cap_percent_without_a_cap_basis_caps_nothing(stack: Stack) -> None:
    bank = stack.institution("东莞测试银行")
    portal = stack.principal("portal")
    product = bank.post(
        "/v1/products", json=data.product(amount_cap_basis="none", amount_cap_pct=0)
    )
    assert product.status_code == 201, product.text
    firm = portal.post("/v1/firms", json=data.firm()).json()["id"]  # needs 2,000,000 yuan
    [ranked] = portal.get(f"/v1/firms/{firm}/matches").json()["ranked"]
    assert (ranked["cost"]["amount_yuan"], ranked["coverage"]) == (2_000_000, 1.0), ranked
