"""Bad input to the registry API: each refused with a 4xx problem body, the database untouched."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry.bulk import MAX_LINE_BYTES
from shared.errors import PROBLEM_JSON
from shared.types import MAX_USD, MAX_YUAN
from tests.conftest import TABLES_CHILD_FIRST
from tests.registry import data
from tests.registry.conftest import Actor

BIGINT_MAX = 2**63 - 1
TOO_BIG = [2**63, 2**64, 10**30]  # beyond what a signed 64-bit column holds
TOO_BIG_IDS = ["9223372036854775808", "99999999999999999999", str(10**30), "0", "-1", "abc"]
FUTURE = (date.today() + timedelta(days=2)).isoformat()
MISSING = object()  # drop the key from the body
IF_MATCH_1 = {"If-Match": '"1"'}

APPROVAL = {
    "outcome": "approved",
    "approved_amount_yuan": 800_000,
    "rate_bp": 420,
    "term_months": 12,
}
REJECTION = {"outcome": "rejected", "rejection_reason": "insufficient_revenue"}


# --- helpers -------------------------------------------------------------------------------


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so that a refused request is seen to have written nothing."""
    with engine.connect() as conn:
        return {
            table: sorted(
                (tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {table}"))), key=repr
            )
            for table in TABLES_CHILD_FIRST
        }


def assert_problem(
    response: httpx.Response, status: int, code: str, fields: set[str] | None = None
) -> dict[str, Any]:
    """A problem-details answer with this status and code, naming exactly ``fields``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    named = {error["field"] for error in body.get("errors", [])}
    assert named == (fields or set()), body
    return body


def refused(
    engine: Engine,
    send: Callable[[], httpx.Response],
    status: int,
    code: str,
    fields: set[str] | None = None,
) -> dict[str, Any]:
    """Send the request; it must be refused and leave every table exactly as it was."""
    before = snapshot(engine)
    body = assert_problem(send(), status, code, fields)
    assert snapshot(engine) == before
    return body


def with_changes(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = body | changes
    return {k: v for k, v in out.items() if v is not MISSING}


def raw_json(actor: Actor, method: str, url: str, content: bytes, **kwargs: Any) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | kwargs.pop("headers", {})
    return actor.request(method, url, content=content, headers=headers, **kwargs)


def application_body(
    firm_id: int, product_id: int, changes: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = {
        "firm_id": firm_id,
        "product_id": product_id,
        "requested_amount_yuan": 1_000_000,
        "requested_term_months": 12,
        "consent_share_profile": True,
    }
    return with_changes(body, changes or {})


@pytest.fixture
def firm_id(portal: Actor) -> int:
    response = portal.post("/v1/firms", json=data.firm())
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture
def product_id(bank: Actor) -> int:
    response = bank.post("/v1/products", json=data.product())
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture
def application_id(portal: Actor, firm_id: int, product_id: int) -> int:
    response = portal.post("/v1/applications", json=application_body(firm_id, product_id))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


# --- firms: POST /v1/firms -----------------------------------------------------------------

CODE = data.firm()["credit_code"]
_WRONG_CHECK = "0" if CODE[-1] != "0" else "1"

FIRM_FIELD_CASES = [
    # credit code
    pytest.param({"credit_code": CODE[:-1] + _WRONG_CHECK}, {"credit_code"}, id="code-checksum"),
    pytest.param({"credit_code": CODE[:17]}, {"credit_code"}, id="code-17-chars"),
    pytest.param({"credit_code": CODE + "1"}, {"credit_code"}, id="code-19-chars"),
    pytest.param({"credit_code": "9" * 41}, {"credit_code"}, id="code-over-max-length"),
    pytest.param({"credit_code": ""}, {"credit_code"}, id="code-empty"),
    pytest.param({"credit_code": CODE[:9] + "I" + CODE[10:]}, {"credit_code"}, id="code-letter-I"),
    pytest.param({"credit_code": CODE[:9] + "!" + CODE[10:]}, {"credit_code"}, id="code-punct"),
    pytest.param({"credit_code": CODE[:9] + "统" + CODE[10:]}, {"credit_code"}, id="code-hanzi"),
    pytest.param({"credit_code": CODE[:9] + "\x00" + CODE[10:]}, {"credit_code"}, id="code-nul"),
    pytest.param({"credit_code": 914419001234567890}, {"credit_code"}, id="code-as-int"),
    pytest.param({"credit_code": MISSING}, {"credit_code"}, id="code-missing"),
    # town and industry
    pytest.param({"town_code": "441900999"}, {"town_code"}, id="town-unknown"),
    pytest.param({"town_code": "4419001160"}, {"town_code"}, id="town-too-long"),
    pytest.param({"town_code": "44190011\x00"}, {"town_code"}, id="town-nul"),
    pytest.param({"town_code": ""}, {"town_code"}, id="town-empty"),
    pytest.param({"industry_section": "Z"}, {"industry_section"}, id="section-unknown"),
    pytest.param({"industry_section": ""}, {"industry_section"}, id="section-empty"),
    pytest.param({"industry_section": "CC"}, {"industry_section"}, id="section-two-letters"),
    pytest.param(
        {"industry_division": 10},
        {"industry_section", "industry_division"},
        id="division-not-in-section",
    ),
    pytest.param({"industry_division": 98}, {"industry_division"}, id="division-98"),
    pytest.param({"industry_division": 0}, {"industry_division"}, id="division-0"),
    pytest.param({"industry_division": 2**64}, {"industry_division"}, id="division-2^64"),
    # money and counts
    pytest.param({"need_amount_yuan": 0}, {"need_amount_yuan"}, id="need-zero"),
    pytest.param({"need_amount_yuan": -1}, {"need_amount_yuan"}, id="need-negative"),
    pytest.param({"need_amount_yuan": MAX_YUAN + 1}, {"need_amount_yuan"}, id="need-absurd"),
    pytest.param({"annual_revenue_yuan": -1}, {"annual_revenue_yuan"}, id="revenue-negative"),
    pytest.param(
        {"annual_revenue_yuan": MAX_YUAN + 1}, {"annual_revenue_yuan"}, id="revenue-absurd"
    ),
    *[
        pytest.param({field: value}, {field}, id=f"{field}-{value:.0e}")
        for field in ("annual_revenue_yuan", "total_assets_yuan", "need_amount_yuan", "employees")
        for value in TOO_BIG
    ],
    pytest.param({"export_revenue_usd": MAX_USD + 1}, {"export_revenue_usd"}, id="export-absurd"),
    pytest.param({"employees": -1}, {"employees"}, id="employees-negative"),
    pytest.param({"employees": 1.5}, {"employees"}, id="employees-fraction"),
    pytest.param({"need_term_months": 0}, {"need_term_months"}, id="term-zero"),
    pytest.param({"need_term_months": 361}, {"need_term_months"}, id="term-361"),
    # strings
    pytest.param({"name": "厂" * 201}, {"name"}, id="name-201-chars"),
    pytest.param({"name": ""}, {"name"}, id="name-empty"),
    pytest.param({"name": "   "}, {"name"}, id="name-blank"),
    pytest.param({"name": "东莞\x00公司"}, {"name"}, id="name-nul"),
    pytest.param({"name": None}, {"name"}, id="name-null"),
    pytest.param({"need_purpose": "采购\x00"}, {"need_purpose"}, id="purpose-nul"),
    pytest.param({"need_purpose": "x" * 501}, {"need_purpose"}, id="purpose-501-chars"),
    # wrong types
    pytest.param({"employees": "many"}, {"employees"}, id="string-for-int"),
    pytest.param({"employees": [45]}, {"employees"}, id="list-for-int"),
    pytest.param({"employees": {"n": 45}}, {"employees"}, id="object-for-int"),
    pytest.param({"name": 123}, {"name"}, id="int-for-string"),
    pytest.param({"name": ["东莞"]}, {"name"}, id="list-for-string"),
    pytest.param({"is_high_tech": {"yes": True}}, {"is_high_tech"}, id="object-for-bool"),
    pytest.param({"is_high_tech": "perhaps"}, {"is_high_tech"}, id="string-for-bool"),
    pytest.param({"credit_rating": "AAAA"}, {"credit_rating"}, id="rating-unknown"),
    # dates
    pytest.param({"established_on": FUTURE}, {"established_on"}, id="established-future"),
    pytest.param({"established_on": "2999-01-01"}, {"established_on"}, id="established-2999"),
    pytest.param({"established_on": "1899-12-31"}, {"established_on"}, id="established-1899"),
    pytest.param({"established_on": "2015-02-30"}, {"established_on"}, id="established-feb-30"),
    pytest.param({"established_on": "soon"}, {"established_on"}, id="established-text"),
]


@pytest.mark.parametrize(("changes", "fields"), FIRM_FIELD_CASES)
def test_firm_create_refuses_bad_field(
    portal: Actor, engine: Engine, firm_id: int, changes: dict[str, Any], fields: set[str]
) -> None:
    # The firm exists: a bad body with its credit code must not update it either.
    body = with_changes(data.firm(), changes)
    refused(engine, lambda: portal.post("/v1/firms", json=body), 422, "validation_error", fields)


NON_OBJECT_BODIES = [
    pytest.param(b"[]", id="empty-list"),
    pytest.param(json.dumps([data.firm()]).encode(), id="list-of-firm"),
    pytest.param(b"true", id="bool"),
    pytest.param(b'"firm"', id="string"),
    pytest.param(b"42", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"", id="empty-body"),
]


@pytest.mark.parametrize("content", NON_OBJECT_BODIES)
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/v1/firms"),
        ("PATCH", "/v1/firms/{firm}"),
        ("POST", "/v1/products"),
        ("PATCH", "/v1/products/{product}"),
        ("POST", "/v1/applications"),
        ("POST", "/v1/applications/{application}/decision"),
    ],
)
def test_non_object_body_is_refused(
    portal: Actor,
    bank: Actor,
    engine: Engine,
    application_id: int,
    firm_id: int,
    product_id: int,
    method: str,
    url: str,
    content: bytes,
) -> None:
    actor = bank if "product" in url or "decision" in url else portal
    target = url.format(firm=firm_id, product=product_id, application=application_id)
    refused(
        engine,
        lambda: raw_json(actor, method, target, content, headers=IF_MATCH_1),
        422,
        "validation_error",
        {"body"},
    )


MALFORMED = [
    pytest.param(b'{"name": ', 422, "validation_error", {"body"}, id="truncated"),
    pytest.param(b"{'name': 'x'}", 422, "validation_error", {"body"}, id="single-quotes"),
    pytest.param(b'{"name": "x",}', 422, "validation_error", {"body"}, id="trailing-comma"),
    pytest.param(b"\xff\xfe{}", 422, "validation_error", {"body"}, id="not-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, "http_error", None, id="deep-nesting"),
]


@pytest.mark.parametrize(("content", "status", "code", "fields"), MALFORMED)
def test_malformed_json_is_refused(
    portal: Actor,
    engine: Engine,
    firm_id: int,
    content: bytes,
    status: int,
    code: str,
    fields: set[str] | None,
) -> None:
    refused(engine, lambda: raw_json(portal, "POST", "/v1/firms", content), status, code, fields)
    refused(
        engine,
        lambda: raw_json(portal, "PATCH", f"/v1/firms/{firm_id}", content, headers=IF_MATCH_1),
        status,
        code,
        fields,
    )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param('{"employees": NaN}', "employees", id="nan"),
        pytest.param('{"employees": Infinity}', "employees", id="infinity"),
        pytest.param('{"annual_revenue_yuan": 1e400}', "annual_revenue_yuan", id="float-overflow"),
        pytest.param('{"name": "\\ud800"}', "name", id="lone-surrogate"),
        pytest.param('{"need_purpose": "\\udfff"}', "need_purpose", id="lone-surrogate-purpose"),
    ],
)
def test_json_values_no_database_can_store_are_refused(
    portal: Actor, engine: Engine, firm_id: int, text: str, field: str
) -> None:
    # Python's JSON parser lets these through; they must end as 422, not as a driver error.
    body = json.dumps({k: v for k, v in data.firm().items() if k not in json.loads(text)})
    content = (body[:-1] + ", " + text[1:]).encode()
    post = partial(raw_json, portal, "POST", "/v1/firms", content)
    refused(engine, post, 422, "validation_error", {field})
    patch = partial(
        raw_json, portal, "PATCH", f"/v1/firms/{firm_id}", text.encode(), headers=IF_MATCH_1
    )
    refused(engine, patch, 422, "validation_error", {field})


def test_credit_code_of_another_portal_is_refused(
    portal: Actor, other_portal: Actor, engine: Engine, firm_id: int
) -> None:
    body = data.firm(name="冒名顶替有限公司")
    send = partial(other_portal.post, "/v1/firms", json=body)
    refused(engine, send, 409, "firm_registered_elsewhere", {"credit_code"})


# --- firms: PATCH /v1/firms/{id} -----------------------------------------------------------

FIRM_PATCH_CASES = [
    pytest.param({"employees": -1}, {"employees"}, id="employees-negative"),
    pytest.param({"employees": 2**64}, {"employees"}, id="employees-2^64"),
    pytest.param({"need_amount_yuan": 0}, {"need_amount_yuan"}, id="need-zero"),
    pytest.param({"need_amount_yuan": 10**30}, {"need_amount_yuan"}, id="need-10^30"),
    pytest.param({"annual_revenue_yuan": MAX_YUAN + 1}, {"annual_revenue_yuan"}, id="absurd"),
    pytest.param({"town_code": "441900999"}, {"town_code"}, id="town-unknown"),
    pytest.param({"industry_section": "Z"}, {"industry_section"}, id="section-unknown"),
    pytest.param(
        {"industry_section": "F"},
        {"industry_section", "industry_division"},
        id="section-without-its-division",
    ),
    pytest.param(
        {"industry_division": 52},
        {"industry_section", "industry_division"},
        id="division-not-in-stored-section",
    ),
    pytest.param({"established_on": FUTURE}, {"established_on"}, id="established-future"),
    pytest.param({"name": "厂" * 201}, {"name"}, id="name-201-chars"),
    pytest.param({"name": "a\x00b"}, {"name"}, id="name-nul"),
    pytest.param({"need_purpose": "\x00"}, {"need_purpose"}, id="purpose-nul"),
    *[
        pytest.param({field: None}, {field}, id=f"{field}-null")
        for field in ("name", "town_code", "employees", "annual_revenue_yuan", "established_on")
    ],
    pytest.param({"employees": "many"}, {"employees"}, id="string-for-int"),
    pytest.param({"is_green_listed": [True]}, {"is_green_listed"}, id="list-for-bool"),
]


@pytest.mark.parametrize(("changes", "fields"), FIRM_PATCH_CASES)
def test_firm_update_refuses_bad_field(
    portal: Actor, engine: Engine, firm_id: int, changes: dict[str, Any], fields: set[str]
) -> None:
    send = partial(portal.patch, f"/v1/firms/{firm_id}", json=changes, headers=IF_MATCH_1)
    refused(engine, send, 422, "validation_error", fields)
    assert portal.get(f"/v1/firms/{firm_id}").json()["version"] == 1


IF_MATCH_CASES = [
    pytest.param(None, 428, "precondition_required", {"If-Match"}, id="missing"),
    pytest.param('"2"', 412, "stale_version", None, id="newer-version"),
    pytest.param('"0"', 412, "stale_version", None, id="older-version"),
    pytest.param("", 412, "precondition_failed", {"If-Match"}, id="empty"),
    pytest.param("abc", 412, "precondition_failed", {"If-Match"}, id="garbage"),
    pytest.param('W/"x"', 412, "precondition_failed", {"If-Match"}, id="weak-garbage"),
    pytest.param('"1", "2"', 412, "precondition_failed", {"If-Match"}, id="list"),
    pytest.param('"-1"', 412, "precondition_failed", {"If-Match"}, id="negative"),
    pytest.param(f'"{10**19}"', 412, "precondition_failed", {"If-Match"}, id="beyond-64-bit"),
    pytest.param('"' + "9" * 45 + '"', 422, "validation_error", {"if-match"}, id="over-long"),
]


@pytest.mark.parametrize(("if_match", "status", "code", "fields"), IF_MATCH_CASES)
def test_firm_update_needs_the_current_version(
    portal: Actor,
    engine: Engine,
    firm_id: int,
    if_match: str | None,
    status: int,
    code: str,
    fields: set[str] | None,
) -> None:
    headers = {} if if_match is None else {"If-Match": if_match}
    send = partial(portal.patch, f"/v1/firms/{firm_id}", json={"employees": 5}, headers=headers)
    refused(engine, send, status, code, fields)


def test_firm_update_after_a_change_is_stale(portal: Actor, engine: Engine, firm_id: int) -> None:
    url = f"/v1/firms/{firm_id}"
    assert portal.patch(url, json={"employees": 5}, headers=IF_MATCH_1).status_code == 200
    send = partial(portal.patch, url, json={"employees": 500}, headers=IF_MATCH_1)
    refused(engine, send, 412, "stale_version")
    firm = portal.get(url).json()
    assert (firm["employees"], firm["version"]) == (5, 2)


def test_firm_of_another_portal_cannot_be_updated(
    other_portal: Actor, engine: Engine, firm_id: int
) -> None:
    send = partial(
        other_portal.patch, f"/v1/firms/{firm_id}", json={"employees": 5}, headers=IF_MATCH_1
    )
    refused(engine, send, 404, "not_found")


# --- path ids and query parameters --------------------------------------------------------

ID_ROUTES = [
    pytest.param("GET", "/v1/firms/{id}", "firm_id", None, id="get-firm"),
    pytest.param("PATCH", "/v1/firms/{id}", "firm_id", {"employees": 5}, id="patch-firm"),
    pytest.param("DELETE", "/v1/firms/{id}", "firm_id", None, id="delete-firm"),
    pytest.param("PATCH", "/v1/products/{id}", "product_id", {"rate_max_bp": 500}, id="patch-prod"),
    pytest.param("GET", "/v1/applications/{id}", "application_id", None, id="get-application"),
    pytest.param(
        "POST", "/v1/applications/{id}/decision", "application_id", REJECTION, id="decision"
    ),
    pytest.param("POST", "/v1/applications/{id}/withdraw", "application_id", None, id="withdraw"),
]


@pytest.mark.parametrize("bad_id", TOO_BIG_IDS)
@pytest.mark.parametrize(("method", "url", "field", "body"), ID_ROUTES)
def test_path_id_out_of_range_is_refused(
    portal: Actor,
    bank: Actor,
    engine: Engine,
    application_id: int,
    method: str,
    url: str,
    field: str,
    body: dict[str, Any] | None,
    bad_id: str,
) -> None:
    actor = bank if "product" in url or "decision" in url else portal
    send = partial(actor.request, method, url.format(id=bad_id), json=body, headers=IF_MATCH_1)
    refused(engine, send, 422, "validation_error", {field})


@pytest.mark.parametrize(("method", "url", "field", "body"), ID_ROUTES)
def test_largest_path_id_is_just_not_found(
    portal: Actor,
    bank: Actor,
    engine: Engine,
    application_id: int,
    method: str,
    url: str,
    field: str,
    body: dict[str, Any] | None,
) -> None:
    actor = bank if "product" in url or "decision" in url else portal
    target = url.format(id=BIGINT_MAX)
    send = partial(actor.request, method, target, json=body, headers=IF_MATCH_1)
    refused(engine, send, 404, "not_found")


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/v1/firms", {"limit": 2**64}, "limit"),
        ("/v1/firms", {"limit": 0}, "limit"),
        ("/v1/firms", {"cursor": _cursor(f"id:{2**64}")}, "cursor"),
        ("/v1/firms", {"cursor": _cursor("id:-5")}, "cursor"),
        ("/v1/firms", {"cursor": "%%%"}, "cursor"),
        ("/v1/firms", {"credit_code": "9" * 19}, "credit_code"),
        ("/v1/products", {"institution_id": 10**30}, "institution_id"),
        ("/v1/products", {"institution_id": 2**63}, "institution_id"),
        ("/v1/products", {"limit": 10**30}, "limit"),
        ("/v1/products", {"category": "casino"}, "category"),
        ("/v1/applications", {"firm_id": 2**64}, "firm_id"),
        ("/v1/applications", {"product_id": 10**30}, "product_id"),
        ("/v1/applications", {"status": "lost"}, "status"),
        # PostgreSQL cannot compare text with NUL: refused before the query, on both backends.
        ("/v1/firms", {"town_code": "\x00"}, "town_code"),
        ("/v1/firms", {"credit_code": "9144\x00"}, "credit_code"),
        ("/v1/products", {"town_code": "\x00"}, "town_code"),
    ],
)
def test_query_parameter_out_of_range_is_refused(
    portal: Actor, engine: Engine, application_id: int, url: str, params: dict[str, Any], field: str
) -> None:
    refused(engine, lambda: portal.get(url, params=params), 422, "validation_error", {field})


@pytest.mark.parametrize("params", [{"entity": "firm\x00"}, {"entity_id": "\x00"}])
def test_audit_query_with_nul_is_refused(
    admin: Actor, engine: Engine, firm_id: int, params: dict[str, str]
) -> None:
    field = next(iter(params))
    refused(
        engine, partial(admin.get, "/v1/audit", params=params), 422, "validation_error", {field}
    )


# --- products ------------------------------------------------------------------------------

PRODUCT_CASES = [
    pytest.param({"amount_min_yuan": 0}, {"amount_min_yuan"}, id="min-zero"),
    pytest.param({"amount_min_yuan": -1}, {"amount_min_yuan"}, id="min-negative"),
    pytest.param({"amount_max_yuan": MAX_YUAN + 1}, {"amount_max_yuan"}, id="max-absurd"),
    pytest.param({"amount_max_yuan": 2**64}, {"amount_max_yuan"}, id="max-2^64"),
    pytest.param({"amount_max_yuan": 10**30}, {"amount_max_yuan"}, id="max-10^30"),
    pytest.param(
        {"amount_min_yuan": 10_000_001},
        {"amount_min_yuan", "amount_max_yuan"},
        id="amount-min-above-max",
    ),
    pytest.param(
        {"term_min_months": 48}, {"term_min_months", "term_max_months"}, id="term-min-above-max"
    ),
    pytest.param({"term_min_months": 0}, {"term_min_months"}, id="term-zero"),
    pytest.param({"term_max_months": 361}, {"term_max_months"}, id="term-361"),
    pytest.param({"rate_max_bp": 3601}, {"rate_max_bp"}, id="rate-above-36pct"),
    pytest.param({"rate_min_bp": -1}, {"rate_min_bp"}, id="rate-negative"),
    pytest.param({"rate_min_bp": 2**64}, {"rate_min_bp"}, id="rate-2^64"),
    pytest.param({"rate_min_bp": 500}, {"rate_min_bp", "rate_max_bp"}, id="rate-min-above-max"),
    pytest.param(
        {"min_revenue_yuan": 5_000_000, "max_revenue_yuan": 1_000_000},
        {"min_revenue_yuan", "max_revenue_yuan"},
        id="revenue-min-above-max",
    ),
    pytest.param({"max_revenue_yuan": -5}, {"max_revenue_yuan"}, id="revenue-negative"),
    pytest.param({"guarantee_fee_bp": 3601}, {"guarantee_fee_bp"}, id="fee-above-36pct"),
    pytest.param({"interest_subsidy_pct": 101}, {"interest_subsidy_pct"}, id="subsidy-101pct"),
    pytest.param({"min_years_established": 2**64}, {"min_years_established"}, id="years-2^64"),
    pytest.param({"elig_town_codes": ["441900999"]}, {"elig_town_codes"}, id="town-unknown"),
    pytest.param({"elig_town_codes": "441900116"}, {"elig_town_codes"}, id="string-for-list"),
    pytest.param(
        {"elig_town_codes": ["441900116"] * 65}, {"elig_town_codes"}, id="town-list-too-long"
    ),
    pytest.param({"elig_industry_sections": ["Z"]}, {"elig_industry_sections"}, id="section"),
    pytest.param({"elig_size_classes": ["huge"]}, {"elig_size_classes.0"}, id="size-class"),
    pytest.param({"category": "casino"}, {"category"}, id="category-unknown"),
    pytest.param({"name": "贷" * 201}, {"name"}, id="name-201-chars"),
    pytest.param({"name": "贷\x00款"}, {"name"}, id="name-nul"),
    pytest.param({"description": "贴息\x00"}, {"description"}, id="description-nul"),
    pytest.param({"description": "x" * 4001}, {"description"}, id="description-4001-chars"),
    pytest.param({"amount_min_yuan": "lots"}, {"amount_min_yuan"}, id="string-for-int"),
    pytest.param({"active": {"on": True}}, {"active"}, id="object-for-bool"),
    pytest.param({"amount_max_yuan": MISSING}, {"amount_max_yuan"}, id="max-missing"),
]


@pytest.mark.parametrize(("changes", "fields"), PRODUCT_CASES)
def test_product_create_refuses_bad_field(
    bank: Actor, engine: Engine, product_id: int, changes: dict[str, Any], fields: set[str]
) -> None:
    body = with_changes(data.product(), changes)
    refused(engine, lambda: bank.post("/v1/products", json=body), 422, "validation_error", fields)


PRODUCT_PATCH_CASES = [
    # Checked against the stored product: min 500 000–max 10 000 000, 6–36 months, 350–480 bp.
    pytest.param(
        {"amount_min_yuan": 20_000_000},
        {"amount_min_yuan", "amount_max_yuan"},
        id="min-above-stored-max",
    ),
    pytest.param(
        {"amount_max_yuan": 100_000},
        {"amount_min_yuan", "amount_max_yuan"},
        id="max-below-stored-min",
    ),
    pytest.param(
        {"term_max_months": 3}, {"term_min_months", "term_max_months"}, id="term-below-stored-min"
    ),
    pytest.param({"rate_max_bp": 300}, {"rate_min_bp", "rate_max_bp"}, id="rate-below-stored-min"),
    pytest.param({"rate_max_bp": 3601}, {"rate_max_bp"}, id="rate-above-36pct"),
    pytest.param({"amount_min_yuan": 0}, {"amount_min_yuan"}, id="min-zero"),
    pytest.param({"amount_max_yuan": 2**64}, {"amount_max_yuan"}, id="max-2^64"),
    pytest.param(
        {"min_revenue_yuan": 9, "max_revenue_yuan": 1},
        {"min_revenue_yuan", "max_revenue_yuan"},
        id="revenue-min-above-max",
    ),
    pytest.param({"name": None}, {"name"}, id="name-null"),
    pytest.param({"amount_max_yuan": None}, {"amount_max_yuan"}, id="max-null"),
    pytest.param({"description": "\x00"}, {"description"}, id="description-nul"),
    pytest.param({"elig_town_codes": ["1"]}, {"elig_town_codes"}, id="town-unknown"),
]


@pytest.mark.parametrize(("changes", "fields"), PRODUCT_PATCH_CASES)
def test_product_update_refuses_bad_field(
    bank: Actor, engine: Engine, product_id: int, changes: dict[str, Any], fields: set[str]
) -> None:
    send = partial(bank.patch, f"/v1/products/{product_id}", json=changes, headers=IF_MATCH_1)
    refused(engine, send, 422, "validation_error", fields)
    assert bank.get(f"/v1/products/{product_id}").json()["version"] == 1


@pytest.mark.parametrize(("if_match", "status", "code", "fields"), IF_MATCH_CASES)
def test_product_update_needs_the_current_version(
    bank: Actor,
    engine: Engine,
    product_id: int,
    if_match: str | None,
    status: int,
    code: str,
    fields: set[str] | None,
) -> None:
    headers = {} if if_match is None else {"If-Match": if_match}
    url = f"/v1/products/{product_id}"
    send = partial(bank.patch, url, json={"rate_max_bp": 500}, headers=headers)
    refused(engine, send, status, code, fields)


def test_product_of_another_institution_cannot_be_updated(
    other_bank: Actor, engine: Engine, product_id: int
) -> None:
    url = f"/v1/products/{product_id}"
    send = partial(other_bank.patch, url, json={"rate_max_bp": 500}, headers=IF_MATCH_1)
    refused(engine, send, 404, "not_found")


# --- applications --------------------------------------------------------------------------

APPLICATION_CASES = [
    pytest.param({"consent_share_profile": False}, {"consent_share_profile"}, id="no-consent"),
    pytest.param({"consent_share_profile": MISSING}, {"consent_share_profile"}, id="consent-unset"),
    pytest.param({"consent_share_profile": None}, {"consent_share_profile"}, id="consent-null"),
    pytest.param({"requested_amount_yuan": 0}, {"requested_amount_yuan"}, id="amount-zero"),
    pytest.param({"requested_amount_yuan": -1}, {"requested_amount_yuan"}, id="amount-negative"),
    pytest.param(
        {"requested_amount_yuan": MAX_YUAN + 1}, {"requested_amount_yuan"}, id="amount-absurd"
    ),
    pytest.param({"requested_amount_yuan": 2**64}, {"requested_amount_yuan"}, id="amount-2^64"),
    pytest.param({"requested_amount_yuan": "1e6"}, {"requested_amount_yuan"}, id="amount-text"),
    pytest.param({"requested_term_months": 0}, {"requested_term_months"}, id="term-zero"),
    pytest.param({"requested_term_months": 10**30}, {"requested_term_months"}, id="term-10^30"),
    pytest.param({"firm_id": 2**64}, {"firm_id"}, id="firm-id-2^64"),
    pytest.param({"firm_id": 0}, {"firm_id"}, id="firm-id-0"),
    pytest.param({"product_id": 10**30}, {"product_id"}, id="product-id-10^30"),
    pytest.param({"product_id": [1]}, {"product_id"}, id="list-for-id"),
]


@pytest.mark.parametrize(("changes", "fields"), APPLICATION_CASES)
def test_application_refuses_bad_field(
    portal: Actor,
    engine: Engine,
    firm_id: int,
    product_id: int,
    changes: dict[str, Any],
    fields: set[str],
) -> None:
    body = application_body(firm_id, product_id, changes)
    send = partial(portal.post, "/v1/applications", json=body)
    refused(engine, send, 422, "validation_error", fields)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"requested_amount_yuan": 499_999}, "requested_amount_yuan", id="below-min"),
        pytest.param({"requested_amount_yuan": 10_000_001}, "requested_amount_yuan", id="above"),
        pytest.param({"requested_term_months": 5}, "requested_term_months", id="term-below-min"),
        pytest.param({"requested_term_months": 37}, "requested_term_months", id="term-above-max"),
    ],
)
def test_application_outside_the_products_range_is_refused(
    portal: Actor,
    engine: Engine,
    firm_id: int,
    product_id: int,
    changes: dict[str, Any],
    field: str,
) -> None:
    body = application_body(firm_id, product_id, changes)
    send = partial(portal.post, "/v1/applications", json=body)
    refused(engine, send, 422, "validation_error", {field})


def test_application_to_an_unavailable_product_is_refused(
    portal: Actor, bank: Actor, engine: Engine, firm_id: int, product_id: int
) -> None:
    def apply_to(target: int) -> Callable[[], httpx.Response]:
        body = application_body(firm_id, target)
        return lambda: portal.post("/v1/applications", json=body)

    refused(engine, apply_to(BIGINT_MAX), 404, "not_found", {"product_id"})
    refused(engine, apply_to(product_id + 1000), 404, "not_found", {"product_id"})
    deactivate = bank.patch(
        f"/v1/products/{product_id}", json={"active": False}, headers=IF_MATCH_1
    )
    assert deactivate.status_code == 200, deactivate.text
    refused(engine, apply_to(product_id), 404, "not_found", {"product_id"})


def test_application_for_another_portals_firm_is_refused(
    portal: Actor, other_portal: Actor, engine: Engine, firm_id: int, product_id: int
) -> None:
    body = application_body(firm_id, product_id)
    refused(
        engine,
        partial(other_portal.post, "/v1/applications", json=body),
        404,
        "not_found",
        {"firm_id"},
    )
    missing = application_body(BIGINT_MAX, product_id)
    refused(
        engine,
        partial(portal.post, "/v1/applications", json=missing),
        404,
        "not_found",
        {"firm_id"},
    )


# --- decisions -----------------------------------------------------------------------------

DECISION_CASES = [
    pytest.param({"outcome": "rejected"}, {"rejection_reason"}, id="rejection-without-reason"),
    pytest.param(
        {"outcome": "approved"},
        {"approved_amount_yuan", "rate_bp", "term_months"},
        id="approval-without-terms",
    ),
    pytest.param(
        with_changes(APPROVAL, {"rate_bp": MISSING}), {"rate_bp"}, id="approval-without-rate"
    ),
    pytest.param(
        with_changes(APPROVAL, {"term_months": MISSING}), {"term_months"}, id="approval-no-term"
    ),
    pytest.param(
        with_changes(APPROVAL, {"approved_amount_yuan": None}),
        {"approved_amount_yuan"},
        id="approval-null-amount",
    ),
    pytest.param(
        APPROVAL | {"approved_amount_yuan": 1_000_001},
        {"approved_amount_yuan"},
        id="approved-above-requested",
    ),
    pytest.param(
        APPROVAL | {"approved_amount_yuan": 0}, {"approved_amount_yuan"}, id="approved-zero"
    ),
    pytest.param(
        APPROVAL | {"approved_amount_yuan": 2**64}, {"approved_amount_yuan"}, id="approved-2^64"
    ),
    pytest.param(APPROVAL | {"rate_bp": 3601}, {"rate_bp"}, id="rate-above-36pct"),
    pytest.param(APPROVAL | {"rate_bp": -1}, {"rate_bp"}, id="rate-negative"),
    pytest.param(APPROVAL | {"term_months": 0}, {"term_months"}, id="term-zero"),
    pytest.param(
        APPROVAL | {"rejection_reason": "other"}, {"rejection_reason"}, id="approval-with-reason"
    ),
    pytest.param(
        REJECTION | {"approved_amount_yuan": 5}, {"approved_amount_yuan"}, id="rejection-amount"
    ),
    pytest.param(REJECTION | {"rejection_reason": "bad luck"}, {"rejection_reason"}, id="reason"),
    pytest.param(REJECTION | {"note": "\x00"}, {"note"}, id="note-nul"),
    pytest.param(REJECTION | {"note": "x" * 501}, {"note"}, id="note-501-chars"),
    pytest.param({"outcome": "maybe"}, {"outcome"}, id="outcome-unknown"),
    pytest.param({"rejection_reason": "other"}, {"outcome"}, id="outcome-missing"),
]


@pytest.mark.parametrize(("body", "fields"), DECISION_CASES)
def test_decision_refuses_bad_field(
    bank: Actor, engine: Engine, application_id: int, body: dict[str, Any], fields: set[str]
) -> None:
    url = f"/v1/applications/{application_id}/decision"
    refused(engine, lambda: bank.post(url, json=body), 422, "validation_error", fields)
    assert bank.get(url).status_code == 404  # still no decision


def test_decision_on_a_missing_application_is_refused(
    bank: Actor, other_bank: Actor, portal: Actor, engine: Engine, application_id: int
) -> None:
    missing = partial(bank.post, f"/v1/applications/{BIGINT_MAX}/decision", json=REJECTION)
    refused(engine, missing, 404, "not_found")
    url = f"/v1/applications/{application_id}/decision"
    refused(engine, lambda: other_bank.post(url, json=REJECTION), 404, "not_found")
    refused(engine, lambda: portal.post(url, json=REJECTION), 404, "not_found")


@pytest.mark.parametrize("second", [REJECTION, APPROVAL | {"approved_amount_yuan": 1_000}])
def test_second_decision_is_refused_and_the_first_stands(
    bank: Actor,
    portal: Actor,
    engine: Engine,
    application_id: int,
    second: dict[str, Any],
) -> None:
    url = f"/v1/applications/{application_id}/decision"
    first = bank.post(url, json=APPROVAL)
    assert first.status_code == 201, first.text
    refused(engine, lambda: bank.post(url, json=second), 409, "invalid_transition")
    assert bank.get(url).json() == first.json()
    withdraw = partial(portal.post, f"/v1/applications/{application_id}/withdraw")
    refused(engine, withdraw, 409, "invalid_transition")
    assert portal.get(f"/v1/applications/{application_id}").json()["status"] == "approved"


def test_decision_on_a_withdrawn_application_is_refused(
    bank: Actor, portal: Actor, engine: Engine, application_id: int
) -> None:
    assert portal.post(f"/v1/applications/{application_id}/withdraw").status_code == 200
    url = f"/v1/applications/{application_id}/decision"
    refused(engine, lambda: bank.post(url, json=APPROVAL), 409, "invalid_transition")


# --- bulk import ---------------------------------------------------------------------------


def ndjson(*lines: dict[str, Any] | bytes) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else json.dumps(line, ensure_ascii=False).encode()) + b"\n"
        for line in lines
    )


def bulk(
    actor: Actor, content: bytes, import_id: str = "imp-1", batch_size: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    params: dict[str, Any] = {"import_id": import_id}
    if batch_size is not None:
        params["batch_size"] = batch_size
    response = actor.post("/v1/firms/bulk", params=params, content=content)
    assert response.status_code == 200, response.text
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    return lines[:-1], lines[-1]


def firm_codes(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT credit_code FROM firm")).scalars())


def line_fields(result: dict[str, Any]) -> set[str]:
    return {error["field"] for error in result["errors"]}


BAD_LINES = [
    pytest.param(b'{"name": "x",', {"line"}, id="malformed-json"),
    pytest.param(b"[1, 2]", {"line"}, id="list-line"),
    pytest.param(b"true", {"line"}, id="bool-line"),
    pytest.param(b"\xff\xfe", {"line"}, id="not-utf8"),
    # Parsed (JSON may escape any code unit), then refused by the field that holds it.
    pytest.param(
        orjson.dumps(data.firm(9, name="N")).replace(b'"N"', b'"\\ud800"'),
        {"name"},
        id="lone-surrogate",
    ),
    pytest.param(data.firm(9, name="东莞\x00公司"), {"name"}, id="nul-in-name"),
    pytest.param(data.firm(9, name="厂" * 201), {"name"}, id="name-201-chars"),
    pytest.param(data.firm(9, town_code="441900999"), {"town_code"}, id="town-unknown"),
    pytest.param(data.firm(9, industry_section="Z"), {"industry_section"}, id="section"),
    pytest.param(
        data.firm(9, industry_division=10),
        {"industry_section", "industry_division"},
        id="division-not-in-section",
    ),
    pytest.param(
        data.firm(9, credit_code=data.firm(9)["credit_code"][:-1] + "!"),
        {"credit_code"},
        id="code-bad-char",
    ),
    pytest.param(data.firm(9, annual_revenue_yuan=2**64), {"annual_revenue_yuan"}, id="2^64"),
    pytest.param(data.firm(9, employees=10**30), {"employees"}, id="10^30"),
    pytest.param(data.firm(9, need_amount_yuan=0), {"need_amount_yuan"}, id="need-zero"),
    pytest.param(data.firm(9, established_on=FUTURE), {"established_on"}, id="future"),
    pytest.param(data.firm(9, employees="many"), {"employees"}, id="string-for-int"),
    pytest.param(data.firm(10, name="同码另一行"), {"credit_code"}, id="duplicate-in-batch"),
    pytest.param(data.firm(77), {"credit_code"}, id="code-of-another-portal"),
]


@pytest.mark.parametrize(("bad", "fields"), BAD_LINES)
def test_bulk_batch_with_one_bad_line_is_rejected_whole(
    portal: Actor,
    other_portal: Actor,
    engine: Engine,
    bad: dict[str, Any] | bytes,
    fields: set[str],
) -> None:
    assert other_portal.post("/v1/firms", json=data.firm(77)).status_code == 201
    before = snapshot(engine)
    results, tail = bulk(portal, ndjson(data.firm(10), bad, data.firm(11)))
    assert snapshot(engine) == before
    assert [r["status"] for r in results] == ["not_written", "invalid", "not_written"]
    assert line_fields(results[1]) == fields
    assert tail["summary"] == {
        "lines": 3,
        "created": 0,
        "updated": 0,
        "invalid": 1,
        "not_written": 2,
    }
    assert tail["batches"] == {"committed": 0, "rejected": 1, "already_committed": 0, "conflict": 0}


def test_bulk_rejected_batch_leaves_the_other_batches_committed_and_resumable(
    portal: Actor, engine: Engine
) -> None:
    good = [data.firm(seq) for seq in range(20, 26)]
    broken = [*good[:3], data.firm(23, town_code="441900999"), *good[4:]]
    results, tail = bulk(portal, ndjson(*broken), batch_size=2)
    assert [r["status"] for r in results] == [
        *["created"] * 2,
        *["not_written", "invalid"],
        *["created"] * 2,
    ]
    assert line_fields(results[3]) == {"town_code"}
    assert tail["batches"] == {"committed": 2, "rejected": 1, "already_committed": 0, "conflict": 0}
    codes = [firm["credit_code"] for firm in good]
    assert firm_codes(engine) == {*codes[:2], *codes[4:]}

    # Resent with the line corrected: only the rejected batch is written now.
    results, tail = bulk(portal, ndjson(*good), batch_size=2)
    assert [r["status"] for r in results] == [
        *["already_committed"] * 2,
        *["created"] * 2,
        *["already_committed"] * 2,
    ]
    assert tail["batches"] == {"committed": 1, "rejected": 0, "already_committed": 2, "conflict": 0}
    assert firm_codes(engine) == set(codes)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version FROM firm")).scalars()
        assert set(versions) == {1}  # nothing written twice

    # Resent once more: every batch is already there, nothing at all is written.
    before = snapshot(engine)
    results, tail = bulk(portal, ndjson(*good), batch_size=2)
    assert {r["status"] for r in results} == {"already_committed"}
    assert tail["summary"]["created"] == tail["summary"]["updated"] == 0
    assert tail["batches"] == {"committed": 0, "rejected": 0, "already_committed": 3, "conflict": 0}
    assert snapshot(engine) == before


def test_bulk_same_import_id_with_other_content_conflicts(portal: Actor, engine: Engine) -> None:
    lines = [data.firm(seq) for seq in range(30, 34)]
    _, tail = bulk(portal, ndjson(*lines), batch_size=2)
    assert tail["batches"]["committed"] == 2
    before = snapshot(engine)
    changed = [data.firm(30, employees=3), *lines[1:]]
    results, tail = bulk(portal, ndjson(*changed), batch_size=2)
    assert snapshot(engine) == before
    assert [r["status"] for r in results] == ["conflict"] * 2 + ["already_committed"] * 2
    assert line_fields(results[0]) == {"import_id"}
    assert tail["batches"] == {"committed": 0, "rejected": 0, "already_committed": 1, "conflict": 1}
    assert tail["summary"]["not_written"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({}, "import_id", id="import-id-missing"),
        pytest.param({"import_id": ""}, "import_id", id="import-id-empty"),
        pytest.param({"import_id": "a b"}, "import_id", id="import-id-space"),
        pytest.param({"import_id": "a/b"}, "import_id", id="import-id-slash"),
        pytest.param({"import_id": "导入"}, "import_id", id="import-id-hanzi"),
        pytest.param({"import_id": "abc\n"}, "import_id", id="import-id-newline"),
        pytest.param({"import_id": "a\x00"}, "import_id", id="import-id-nul"),
        pytest.param({"import_id": "x" * 65}, "import_id", id="import-id-65-chars"),
        pytest.param({"import_id": "ok", "batch_size": 0}, "batch_size", id="batch-size-0"),
        pytest.param({"import_id": "ok", "batch_size": 2**64}, "batch_size", id="batch-2^64"),
        pytest.param({"import_id": "ok", "batch_size": "all"}, "batch_size", id="batch-text"),
    ],
)
def test_bulk_refuses_bad_query_parameters(
    portal: Actor, engine: Engine, params: dict[str, Any], field: str
) -> None:
    send = partial(portal.post, "/v1/firms/bulk", params=params, content=ndjson(data.firm(40)))
    refused(engine, send, 422, "validation_error", {field})


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_bulk_over_long_line_is_an_invalid_line(
    portal: Actor, engine: Engine, trailing_newline: bool
) -> None:
    # Whether the long line ends the body or not, and however it is chunked, it is refused in
    # the per-line results; it used to be a 413 only when it was the last, unterminated line.
    long_line = json.dumps(data.firm(62, need_purpose="x" * MAX_LINE_BYTES)).encode()
    content = ndjson(data.firm(60), data.firm(61), long_line)
    if not trailing_newline:
        content = content.rstrip(b"\n")
    results, tail = bulk(portal, content, batch_size=2)
    assert [r["status"] for r in results] == ["created", "created", "invalid"]
    assert line_fields(results[2]) == {"line"}
    assert tail["batches"] == {"committed": 1, "rejected": 1, "already_committed": 0, "conflict": 0}
    assert firm_codes(engine) == {data.firm(60)["credit_code"], data.firm(61)["credit_code"]}
