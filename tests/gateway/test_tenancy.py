"""Tenancy (OWASP API1 BOLA and API5 BFLA): every public endpoint × every role × side A / side B.

The world: portal A's firm FA (塘厦) and portal B's firm FB (虎门); institution X's product PX
and institution Y's product PY; FA applied to PX twice (one application decided, one open),
FB likewise to PY; officials of 塘厦 441900116, of 虎门 441900121 and of the whole city; the
admin. In the matrix, side A is portal A's, institution X's and 塘厦's (so, for the portal
and the institution that call, their own objects), side B is portal B's, institution Y's and
虎门's. A caller outside an object's scope, or a role that may not use a function, gets 404
(never 403) and nothing of the object; a missing or unknown key gets 401.

The matrix runs with the gateway's in-process cache and with Redis (on SQLite; the cache does
not depend on the database): a cached answer, key or catalogue must never cross tenants either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry.models import TrainingJob
from tests.gateway.conftest import Api, Stack, own_database, running_stack
from tests.registry import data
from tests.services import need_redis

TANGXIA, HUMEN = "441900116", "441900121"
UNLIMITED = {
    **{f"rate_limit_{role}": 10**6 for role in ("portal", "institution", "official", "admin")},
    # bad_key tries every endpoint: its failures must stay 401s, not turn into 429s.
    "auth_failures_per_address": 10**6,
    "auth_failures_per_key_prefix": 10**6,
}
# (database, gateway cache) of the worlds the matrix runs in.
WORLDS = [
    pytest.param(("sqlite", "in-process"), id="sqlite"),
    pytest.param(("sqlite", "redis"), id="sqlite-redis", marks=pytest.mark.redis),
    pytest.param(("postgres", "in-process"), id="postgres", marks=pytest.mark.postgres),
]
WORLD_ARGS = [pytest.param(*w.values[0], id=w.id, marks=w.marks) for w in WORLDS]


def cache_settings(cache: str) -> dict[str, Any]:
    return {"redis_url": need_redis()} if cache == "redis" else {}


@dataclass
class World:
    stack: Stack
    callers: dict[str, Api]
    portal_b: Api
    institution_y: Api
    ids: dict[str, int]  # FA, FB, PX, PY, A_open, A_decided, B_open, B_decided, CA, CB…
    firms: dict[str, dict[str, Any]]  # FA, FB as submitted

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _apply(portal: Api, firm_id: int, product_id: int) -> int:
    body = {
        "firm_id": firm_id,
        "product_id": product_id,
        "requested_amount_yuan": 2_000_000,
        "requested_term_months": 12,
        "consent_share_profile": True,
    }
    return int(_created(portal.post("/v1/applications", json=body))["id"])


HOOK = {"url": "http://127.0.0.1:9/hook", "event_types": ["application.decided"]}
APPROVED = {
    "outcome": "approved",
    "approved_amount_yuan": 1_500_000,
    "rate_bp": 400,
    "term_months": 12,
}


def _consents(portal: Api, firm_id: int) -> list[dict[str, Any]]:
    answer = portal.get(f"/v1/firms/{firm_id}/consents")
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


def build_world(stack: Stack) -> World:
    institution_x = stack.institution("甲银行")
    institution_y = stack.institution("乙银行")
    portal_a = stack.principal("portal")
    portal_b = stack.principal("portal")
    callers = {
        "portal_a": portal_a,
        "institution_x": institution_x,
        "official_116": stack.principal("official", town_code=TANGXIA),
        "official_121": stack.principal("official", town_code=HUMEN),
        "official_city": stack.principal("official"),
        "admin": stack.admin,
        "no_key": Api(stack.client, ""),
        "bad_key": Api(stack.client, "fm_port_" + "x" * 43),
    }
    firms = {
        "FA": data.firm(1, name="东莞市甲方精密电子有限公司", town_code=TANGXIA),
        "FB": data.firm(2, name="东莞市乙方模具制造有限公司", town_code=HUMEN),
    }
    product_x, product_y = data.product(name="甲行专利贷"), data.product(name="乙行专利贷")
    ids = {
        "FA": _created(portal_a.post("/v1/firms", json=firms["FA"]))["id"],
        "FB": _created(portal_b.post("/v1/firms", json=firms["FB"]))["id"],
        "PX": _created(institution_x.post("/v1/products", json=product_x))["id"],
        "PY": _created(institution_y.post("/v1/products", json=product_y))["id"],
    }
    for side, portal, institution, firm, product in (
        ("A", portal_a, institution_x, "FA", "PX"),
        ("B", portal_b, institution_y, "FB", "PY"),
    ):
        decided = _apply(portal, ids[firm], ids[product])
        _created(institution.post(f"/v1/applications/{decided}/decision", json=APPROVED))
        ids[f"{side}_decided"] = decided
        ids[f"{side}_open"] = _apply(portal, ids[firm], ids[product])
        # Both applications went to one institution: one consent, the firm's only one.
        [consent] = _consents(portal, ids[firm])
        ids[f"C{side}"] = consent["id"]
    spare = _created(
        stack.admin.post("/v1/admin/principals", json={"role": "portal", "name": "备"})
    )
    ids["spare_principal"] = spare["id"]
    ids["spare_key"] = _created(
        stack.admin.post("/v1/admin/keys", json={"principal_id": spare["id"]})
    )["id"]
    ids["JOB"] = _finished_job(stack)
    # Each portal's webhook endpoint, with one delivery (a test ping) in its log.
    for side, portal in (("A", portal_a), ("B", portal_b)):
        endpoint = _created(portal.post("/v1/webhooks/endpoints", json=HOOK))["id"]
        ids[f"W{side}"] = endpoint
        sent = portal.post(f"/v1/webhooks/endpoints/{endpoint}/test")
        assert sent.status_code == 202, sent.text
        ids[f"D{side}"] = sent.json()["id"]
    return World(stack, callers, portal_b, institution_y, ids, firms)


def _finished_job(stack: Stack) -> int:
    """A training job the command line ran and that failed: the world has too few decisions
    to train on through the API (admin.train is a 422 there)."""
    now = datetime.now(UTC)
    job = TrainingJob(
        status="failed",
        trigger="cli",
        runner="tenancy-world",
        created_at=now,
        lease_until=now,
        finished_at=now,
        error="2 decided applications; need at least 200",
    )
    with Session(stack.engine) as session:
        session.add(job)
        session.commit()
        assert job.id is not None
        return job.id


@pytest.fixture
def world_cache() -> str:
    """The gateway cache of ``world``; the matrix parametrises it (see WORLDS)."""
    return "in-process"


@pytest.fixture
def world(engine: Engine, world_cache: str) -> Iterator[World]:
    """A world of the test's own."""
    with running_stack(engine, **cache_settings(world_cache)) as stack:
        yield build_world(stack)


@pytest.fixture(scope="module", params=WORLDS)
def shared_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One world per backend for the cells that should change nothing: reads and refused
    calls. Afterwards the world must be as it was built (a refusal that wrote is a leak)."""
    database, cache = request.param
    with (
        own_database(database, tmp_path_factory.mktemp("tenancy")) as engine,
        running_stack(engine, **UNLIMITED, **cache_settings(cache)) as stack,
    ):
        world = build_world(stack)
        yield world
        assert_world_intact(world)


def assert_world_intact(world: World) -> None:
    """Nothing was added, changed or removed (every version is still the first one)."""
    admin = world.callers["admin"]

    def versions(path: str) -> dict[int, int]:
        answer = admin.get(path, params={"limit": 500})
        assert answer.status_code == 200, answer.text
        return {row["id"]: row["version"] for row in answer.json()["data"]}

    assert versions("/v1/firms") == {world["FA"]: 1, world["FB"]: 1}
    assert versions("/v1/products") == {world["PX"]: 1, world["PY"]: 1}
    decided, still_open = 2, 1  # a decision is the one change an application has had
    assert versions("/v1/applications") == {
        world["A_decided"]: decided,
        world["A_open"]: still_open,
        world["B_decided"]: decided,
        world["B_open"]: still_open,
    }
    for side, portal in (("A", world.callers["portal_a"]), ("B", world.portal_b)):
        standing = [(c["id"], c["status"]) for c in _consents(portal, world[f"F{side}"])]
        assert standing == [(world[f"C{side}"], "active")]
        assert versions_of(portal, "/v1/webhooks/endpoints") == {world[f"W{side}"]: 1}
        assert versions_of(portal, "/v1/webhooks/deliveries") == {world[f"D{side}"]: None}


def versions_of(api: Api, path: str) -> dict[int, int | None]:
    answer = api.get(path, params={"limit": 500})
    assert answer.status_code == 200, answer.text
    return {row["id"]: row.get("version") for row in answer.json()["data"]}


# How each endpoint is called against side A or side B: (method, path, request kwargs).
Call = tuple[str, str, dict[str, Any]]


class Endpoint(NamedTuple):
    route: str  # as the gateway declares it
    call: Callable[[World, str], Call]


def _pick(side: str, a: Any, b: Any) -> Any:
    return a if side == "A" else b


def _on(route: str, a: str | None = None, b: str | None = None, **kwargs: Any) -> Endpoint:
    """The route as is, or with {id} filled by the world's object ``a`` (side A) or ``b``."""
    method, template = route.split(" ", 1)

    def call(w: World, side: str) -> Call:
        path = template if a is None else template.format(id=w[_pick(side, a, b)])
        return method, path, kwargs

    return Endpoint(route, call)


def _ndjson(*rows: dict[str, Any]) -> dict[str, Any]:
    content = "\n".join(json.dumps(row, ensure_ascii=False) for row in rows).encode()
    return {"content": content, "headers": {"Content-Type": "application/x-ndjson"}}


def _firm_upsert(w: World, side: str) -> Call:
    # Side A: a new firm; side B: portal B's credit code (a portal cannot take it over).
    body = _pick(side, data.firm(9, town_code=TANGXIA), w.firms["FB"])
    return "POST", "/v1/firms", {"json": body}


def _firm_bulk(w: World, side: str) -> Call:
    row = _pick(side, data.firm(9, town_code=TANGXIA), w.firms["FB"])
    return "POST", "/v1/firms/bulk", {"params": {"import_id": "imp-1"}, **_ndjson(row)}


def _history(w: World, side: str) -> Call:
    # Side A: a past decision on institution X's product; side B: on Y's (not X's to import).
    line = {
        "product_id": _pick(side, w["PX"], w["PY"]),
        "firm": {
            key: value
            for key, value in data.firm(9, town_code=TANGXIA).items()
            if key not in {"name", "need_purpose"}
        },
        "requested_amount_yuan": 2_000_000,
        "requested_term_months": 12,
        "submitted_at": "2025-06-03T09:30:00+08:00",
        "decided_at": "2025-06-10T16:00:00+08:00",
        "decision": {"outcome": "rejected", "rejection_reason": "other"},
    }
    return "POST", "/v1/decisions/history", {"params": {"import_id": "hist-1"}, **_ndjson(line)}


def _register(append: bool) -> Callable[[World, str], Call]:
    """An upload of the green list naming firm FA (registers have no sides: the city's)."""

    def call(w: World, side: str) -> Call:
        line = {
            "credit_code": w.firms["FA"]["credit_code"],
            "list_date": "2025-06-30",
            "sector": "节能环保",
        }
        params = {"upload_id": "reg-1"} | ({"mode": "append"} if append else {})
        method = "POST" if append else "PUT"
        return method, "/v1/registers/green_list", {"params": params, **_ndjson(line)}

    return call


def _apply_call(w: World, side: str) -> Call:
    # Side A: portal A's firm applies to Y's product; side B: portal B's firm to X's product.
    firm, product = _pick(side, (w["FA"], w["PY"]), (w["FB"], w["PX"]))
    body = {
        "firm_id": firm,
        "product_id": product,
        "requested_amount_yuan": 1_000_000,
        "requested_term_months": 12,
        "consent_share_profile": True,
    }
    return "POST", "/v1/applications", {"json": body}


def _stats(path: str, **params: Any) -> Callable[[World, str], Call]:
    def call(w: World, side: str) -> Call:
        return "GET", path, {"params": {**params, "town_code": _pick(side, TANGXIA, HUMEN)}}

    return call


def _what_if(w: World, side: str) -> Call:
    town = _pick(side, TANGXIA, HUMEN)
    question = {"category": "ip_pledge", "criterion": "min_patents", "value": 0, "town_code": town}
    return "POST", "/v1/stats/what-if", {"json": question}


def _new_key(w: World, side: str) -> Call:
    return "POST", "/v1/admin/keys", {"json": {"principal_id": w["spare_principal"]}}


def _revoke_consent(w: World, side: str) -> Call:
    firm, consent = _pick(side, (w["FA"], w["CA"]), (w["FB"], w["CB"]))
    return "POST", f"/v1/firms/{firm}/consents/{consent}/revoke", {}


def _deliveries(w: World, side: str) -> Call:
    return "GET", "/v1/webhooks/deliveries", {"params": {"endpoint_id": w[f"W{side}"]}}


def _promote(w: World, side: str) -> Call:
    return "POST", "/v1/admin/models/m-404/promote", {}


IF_MATCH = {"If-Match": '"1"'}
ENDPOINTS = {
    "firms.upsert": Endpoint("POST /v1/firms", _firm_upsert),
    "firms.list": _on("GET /v1/firms"),
    "firms.bulk": Endpoint("POST /v1/firms/bulk", _firm_bulk),
    "decisions.history": Endpoint("POST /v1/decisions/history", _history),
    "registers.replace": Endpoint("PUT /v1/registers/{kind}", _register(append=False)),
    "registers.append": Endpoint("POST /v1/registers/{kind}", _register(append=True)),
    "firm.get": _on("GET /v1/firms/{id}", "FA", "FB"),
    "firm.patch": _on("PATCH /v1/firms/{id}", "FA", "FB", json={"employees": 60}, headers=IF_MATCH),
    "firm.erase": _on("DELETE /v1/firms/{id}", "FA", "FB"),
    "firm.matches": _on("GET /v1/firms/{id}/matches", "FA", "FB"),
    "firm.consents": _on("GET /v1/firms/{id}/consents", "FA", "FB"),
    "consent.revoke": Endpoint("POST /v1/firms/{id}/consents/{consent_id}/revoke", _revoke_consent),
    "products.create": _on("POST /v1/products", json=data.product(name="新产品")),
    "products.list": _on("GET /v1/products"),
    "product.get": _on("GET /v1/products/{id}", "PX", "PY"),
    "product.patch": _on(
        "PATCH /v1/products/{id}", "PX", "PY", json={"rate_min_bp": 360}, headers=IF_MATCH
    ),
    "product.delete": _on("DELETE /v1/products/{id}", "PX", "PY"),
    "products.preview": _on("POST /v1/products/preview", json=data.product(name="草稿")),
    "product.reach": _on("GET /v1/products/{id}/reach", "PX", "PY"),
    "apps.create": Endpoint("POST /v1/applications", _apply_call),
    "apps.list": _on("GET /v1/applications"),
    "app.get": _on("GET /v1/applications/{id}", "A_open", "B_open"),
    "app.withdraw": _on("POST /v1/applications/{id}/withdraw", "A_open", "B_open"),
    "app.decide": _on("POST /v1/applications/{id}/decision", "A_open", "B_open", json=APPROVED),
    "app.decision": _on("GET /v1/applications/{id}/decision", "A_decided", "B_decided"),
    "stats.breakdown": Endpoint(
        "GET /v1/stats/breakdown", _stats("/v1/stats/breakdown", by="category")
    ),
    "stats.firms": Endpoint("GET /v1/stats/firms", _stats("/v1/stats/firms")),
    "stats.overview": Endpoint("GET /v1/stats/overview", _stats("/v1/stats/overview")),
    "stats.league": Endpoint("GET /v1/stats/institutions", _stats("/v1/stats/institutions")),
    "stats.targets": Endpoint("GET /v1/stats/targets", _stats("/v1/stats/targets")),
    "stats.products": Endpoint("GET /v1/stats/products", _stats("/v1/stats/products")),
    "stats.coverage": Endpoint("GET /v1/stats/coverage", _stats("/v1/stats/coverage")),
    "stats.registers": Endpoint("GET /v1/stats/registers", _stats("/v1/stats/registers")),
    "stats.what_if": Endpoint("POST /v1/stats/what-if", _what_if),
    "admin.institution": _on(
        "POST /v1/admin/institutions", json={"name": "丙担保", "kind": "guarantor"}
    ),
    "admin.institutions": _on("GET /v1/admin/institutions"),
    "admin.principal": _on("POST /v1/admin/principals", json={"role": "portal", "name": "新"}),
    "admin.key": Endpoint("POST /v1/admin/keys", _new_key),
    "admin.keys": _on("GET /v1/admin/keys"),
    "admin.revoke": _on("POST /v1/admin/keys/{id}/revoke", "spare_key", "spare_key"),
    "admin.models": _on("GET /v1/admin/models"),
    "admin.train": _on("POST /v1/admin/models/train", json={}),
    "admin.jobs": _on("GET /v1/admin/models/jobs"),
    "admin.job": _on("GET /v1/admin/models/jobs/{id}", "JOB", "JOB"),
    "admin.promote": Endpoint("POST /v1/admin/models/{version}/promote", _promote),
    "admin.rollback": _on("POST /v1/admin/models/rollback"),
    "ref.towns": _on("GET /v1/reference/towns"),
    "hooks.create": _on("POST /v1/webhooks/endpoints", json=HOOK),
    "hooks.list": _on("GET /v1/webhooks/endpoints"),
    "hook.get": _on("GET /v1/webhooks/endpoints/{id}", "WA", "WB"),
    "hook.patch": _on(
        "PATCH /v1/webhooks/endpoints/{id}", "WA", "WB", json={"enabled": False}, headers=IF_MATCH
    ),
    "hook.delete": _on("DELETE /v1/webhooks/endpoints/{id}", "WA", "WB"),
    "hook.rotate": _on("POST /v1/webhooks/endpoints/{id}/rotate-secret", "WA", "WB"),
    "hook.test": _on("POST /v1/webhooks/endpoints/{id}/test", "WA", "WB"),
    "deliveries.list": Endpoint("GET /v1/webhooks/deliveries", _deliveries),
    "delivery.redeliver": _on("POST /v1/webhooks/deliveries/{id}/redeliver", "DA", "DB"),
    "ref.industries": _on("GET /v1/reference/industries"),
    "ref.categories": _on("GET /v1/reference/product-categories"),
    "ref.error_codes": _on("GET /v1/reference/error-codes"),
}

ROLES = ("portal_a", "institution_x", "official_116", "official_121", "official_city", "admin")
Cell = int | tuple[int, int]  # one status for an endpoint without sides, else (side A, side B)


class Row(NamedTuple):
    endpoint: str
    portal_a: Cell
    institution_x: Cell
    official_116: Cell
    official_121: Cell
    official_city: Cell
    admin: Cell


# The common pairs (side A, side B).
BOTH = (200, 200)
A_ONLY = (200, 404)
B_ONLY = (404, 200)
X = (404, 404)  # neither side: out of scope, or a function the role may not use
# fmt: off
MATRIX = [
    #   endpoint             portal_a    institution_x official_116 official_121 official_city admin
    Row("firms.upsert",      (201, 409), X,            X,           X,           X,           X),
    Row("firms.list",        200,        404,          404,         404,         404,         200),
    Row("firms.bulk",        BOTH,       X,            X,           X,           X,           X),
    Row("decisions.history", X,          BOTH,         X,           X,           X,           X),
    # The city's officials and admins upload the official registers; nobody lists them.
    Row("registers.replace", 404,        404,          404,         404,         200,         200),
    Row("registers.append",  404,        404,          404,         404,         200,         200),
    Row("firm.get",          A_ONLY,     A_ONLY,       X,           X,           X,           BOTH),
    Row("firm.patch",        A_ONLY,     X,            X,           X,           X,           X),
    Row("firm.erase",        (204, 404), X,            X,           X,           X,           X),
    Row("firm.matches",      A_ONLY,     X,            X,           X,           X,           X),
    # A firm's consents are its own portal's business: not the institution's, nor the admin's.
    Row("firm.consents",     A_ONLY,     X,            X,           X,           X,           X),
    Row("consent.revoke",    A_ONLY,     X,            X,           X,           X,           X),
    Row("products.create",   404,        201,          404,         404,         404,         404),
    Row("products.list",     200,        200,          200,         200,         200,         200),
    Row("product.get",       BOTH,       BOTH,         BOTH,        BOTH,        BOTH,        BOTH),
    Row("product.patch",     X,          A_ONLY,       X,           X,           X,           X),
    Row("product.delete",    X,          (204, 404),   X,           X,           X,           X),
    Row("products.preview",  404,        200,          404,         404,         404,         404),
    Row("product.reach",     X,          A_ONLY,       X,           X,           X,           BOTH),
    Row("apps.create",       (201, 404), X,            X,           X,           X,           X),
    Row("apps.list",         200,        200,          404,         404,         404,         200),
    Row("app.get",           A_ONLY,     A_ONLY,       X,           X,           X,           BOTH),
    Row("app.withdraw",      A_ONLY,     X,            X,           X,           X,           X),
    Row("app.decide",        X,          (201, 404),   X,           X,           X,           X),
    Row("app.decision",      A_ONLY,     A_ONLY,       X,           X,           X,           BOTH),
    Row("stats.breakdown",   X,          X,            A_ONLY,      B_ONLY,      BOTH,        BOTH),
    Row("stats.firms",       X,          X,            A_ONLY,      B_ONLY,      BOTH,        BOTH),
    Row("stats.overview",    X,          X,            A_ONLY,      B_ONLY,      BOTH,        BOTH),
    Row("stats.league",      X,          X,            A_ONLY,      B_ONLY,      BOTH,        BOTH),
    Row("stats.targets",     X,          X,            A_ONLY,      B_ONLY,      BOTH,        BOTH),
    # An institution sees its own products' rows, whichever town it asks about.
    Row("stats.products",    X,          BOTH,         A_ONLY,      B_ONLY,      BOTH,        BOTH),
    Row("stats.coverage",    X,          X,            A_ONLY,      B_ONLY,      BOTH,        BOTH),
    Row("stats.registers",   X,          X,            A_ONLY,      B_ONLY,      BOTH,        BOTH),
    Row("stats.what_if",     X,          X,            A_ONLY,      B_ONLY,      BOTH,        BOTH),
    Row("admin.institution", 404,        404,          404,         404,         404,         201),
    Row("admin.institutions", 404,       404,          404,         404,         404,         200),
    Row("admin.principal",   404,        404,          404,         404,         404,         201),
    Row("admin.key",         404,        404,          404,         404,         404,         201),
    Row("admin.keys",        404,        404,          404,         404,         404,         200),
    Row("admin.revoke",      404,        404,          404,         404,         404,         200),
    Row("admin.models",      404,        404,          404,         404,         404,         200),
    # The admin reaches the matching service, which refuses: too few decisions to train on,
    # no such model version, no earlier model to roll back to.
    Row("admin.train",       404,        404,          404,         404,         404,         422),
    Row("admin.jobs",        404,        404,          404,         404,         404,         200),
    Row("admin.job",         404,        404,          404,         404,         404,         200),
    Row("admin.promote",     404,        404,          404,         404,         404,         404),
    Row("admin.rollback",    404,        404,          404,         404,         404,         409),
    Row("ref.towns",         200,        200,          200,         200,         200,         200),
    # Any principal keeps webhook endpoints; each sees and changes its own only. An endpoint
    # subscribes only to what its owner is sent: application.decided goes to portals.
    Row("hooks.create",      201,        422,          422,         422,         422,         422),
    Row("hooks.list",        200,        200,          200,         200,         200,         200),
    Row("hook.get",          A_ONLY,     X,            X,           X,           X,           X),
    Row("hook.patch",        A_ONLY,     X,            X,           X,           X,           X),
    Row("hook.delete",       (204, 404), X,            X,           X,           X,           X),
    Row("hook.rotate",       A_ONLY,     X,            X,           X,           X,           X),
    Row("hook.test",         (202, 404), X,            X,           X,           X,           X),
    Row("deliveries.list",   A_ONLY,     X,            X,           X,           X,           X),
    Row("delivery.redeliver", (202, 404), X,           X,           X,           X,           X),
    Row("ref.industries",    200,        200,          200,         200,         200,         200),
    Row("ref.categories",    200,        200,          200,         200,         200,         200),
    Row("ref.error_codes",   200,        200,          200,         200,         200,         200),
]
# fmt: on


def _cells(*, writes: bool) -> list[Any]:
    """The matrix as test cases: the successful writes, or everything else."""
    cells = []
    for row in MATRIX:
        route = ENDPOINTS[row.endpoint].route
        method = route.split()[0]
        for role in ROLES:
            cell: Cell = getattr(row, role)
            sides = {"-": cell} if isinstance(cell, int) else {"A": cell[0], "B": cell[1]}
            for side, status in sides.items():
                if writes == (method != "GET" and status < 300):
                    case = f"{route}|{role}|{side}"
                    cells.append(pytest.param(row.endpoint, role, side, status, id=case))
        if not writes:
            for role in ("no_key", "bad_key"):
                case = f"{route}|{role}"
                cells.append(pytest.param(row.endpoint, role, "A", 401, id=case))
    return cells


def test_matrix_covers_every_public_endpoint(shared_world: World) -> None:
    paths = shared_world.stack.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    ids = r"{(firm|product|application|key|endpoint|delivery|job)_id}"
    declared = {
        f"{method.upper()} {re.sub(ids, '{id}', path)}"
        for path, operations in paths.items()
        if path.startswith("/v1/")
        for method in operations
    }
    assert declared == {endpoint.route for endpoint in ENDPOINTS.values()}
    assert [row.endpoint for row in MATRIX] == list(ENDPOINTS)
    cells = sum(1 if isinstance(getattr(r, role), int) else 2 for r in MATRIX for role in ROLES)
    unauthenticated = 2 * len(MATRIX)
    assert len(_cells(writes=True)) + len(_cells(writes=False)) == cells + unauthenticated


@pytest.mark.parametrize(("endpoint", "role", "side", "expected"), _cells(writes=False))
def test_reads_and_refusals(
    shared_world: World, endpoint: str, role: str, side: str, expected: int
) -> None:
    _check_cell(shared_world, endpoint, role, side, expected)


@pytest.mark.parametrize(("engine", "world_cache"), WORLD_ARGS, indirect=["engine"])
@pytest.mark.parametrize(("endpoint", "role", "side", "expected"), _cells(writes=True))
def test_successful_writes(
    world: World, endpoint: str, role: str, side: str, expected: int
) -> None:
    _check_cell(world, endpoint, role, side, expected)


def _check_cell(world: World, endpoint: str, role: str, side: str, expected: int) -> None:
    method, path, kwargs = ENDPOINTS[endpoint].call(world, "A" if side == "-" else side)
    answer = world.callers[role].request(method, path, **kwargs)

    assert answer.status_code == expected, answer.text
    if expected >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == expected
        if expected == 401:
            assert problem["code"] in {"missing_key", "invalid_key"}
        # Nothing of any firm leaks into a refusal (names and credit codes are private).
        for firm in world.firms.values():
            assert firm["name"] not in answer.text
            assert firm["credit_code"] not in answer.text
        return
    if endpoint == "decisions.history":
        # 200 on both sides, line by line: imported for X's product; Y's is "not found".
        *results, _summary = [json.loads(line) for line in answer.text.splitlines()]
        if side == "A":
            assert [r["status"] for r in results] == ["imported"]
        else:
            assert results[0]["errors"] == [
                {"field": "product_id", "message": f"product {world['PY']} not found"}
            ]
        return
    if endpoint.startswith("registers."):
        # The summary line: the upload became the register's first version.
        summary = json.loads(answer.text.splitlines()[-1])
        assert summary["upload"]["kind"] == "green_list"
        assert summary["upload"]["version"] == 1
        return
    if answer.status_code == 204 or endpoint == "firms.bulk":
        return
    # A 2xx carries the object asked for, never a neighbour's.
    body = answer.json()
    target = {
        "firm.get": "FA" if side == "A" else "FB",
        "firm.patch": "FA",
        "product.get": "PX" if side == "A" else "PY",
        "product.patch": "PX",
        "app.get": f"{side}_open",
        "app.withdraw": "A_open",
        "hook.get": f"W{side}",
        "hook.patch": "WA",
        "hook.rotate": "WA",
    }.get(endpoint)
    if target is not None:
        assert body["id"] == world[target]
    if endpoint == "firm.matches":
        assert body["firm_id"] == world["FA"]
    if endpoint == "firm.consents":
        assert [(c["id"], c["firm_id"]) for c in body["data"]] == [(world["CA"], world["FA"])]
    if endpoint == "consent.revoke":
        assert (body["id"], body["status"]) == (world["CA"], "revoked")
    if endpoint in {"app.decision", "app.decide"}:
        assert body["application_id"] == world[f"{side}_decided" if method == "GET" else "A_open"]
    if endpoint.startswith("stats."):
        asked = kwargs["json" if method == "POST" else "params"]["town_code"]
        assert body.get("town_code", body.get("filters", {}).get("town_code")) == asked
    if endpoint.startswith("hook."):
        assert ("secret" in body) == (endpoint == "hook.rotate")
    if endpoint in {"hook.test", "delivery.redeliver"}:
        assert body["endpoint_id"] == world["WA"]
    if endpoint == "deliveries.list":
        assert [row["id"] for row in body["data"]] == [world[f"D{side}"]]
    if endpoint == "hooks.list":
        owned = [world["WA"]] if role == "portal_a" else []
        assert [row["id"] for row in body["data"]] == owned
    if endpoint == "apps.create":
        assert (body["firm_id"], body["product_id"]) == (world["FA"], world["PY"])


# Lists never carry another tenant's rows, whatever the filters.


def _ids(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [row["id"] for row in answer.json()["data"]]


def test_firm_lists_hold_only_own_firms(world: World) -> None:
    portal_a, admin = world.callers["portal_a"], world.callers["admin"]
    assert _ids(portal_a.get("/v1/firms")) == [world["FA"]]
    assert _ids(world.portal_b.get("/v1/firms")) == [world["FB"]]
    assert _ids(admin.get("/v1/firms")) == [world["FA"], world["FB"]]
    # Filters narrow the portal's own rows; they never widen them.
    assert _ids(portal_a.get("/v1/firms", params={"town_code": HUMEN})) == []
    code_b = world.firms["FB"]["credit_code"]
    assert _ids(portal_a.get("/v1/firms", params={"credit_code": code_b})) == []
    first = admin.get("/v1/firms", params={"limit": 1})
    assert _ids(first) == [world["FA"]]
    cursor = first.json()["next_cursor"]
    # Another portal's cursor leads nowhere into portal A's rows.
    assert _ids(world.portal_b.get("/v1/firms", params={"cursor": cursor})) == [world["FB"]]
    assert _ids(portal_a.get("/v1/firms", params={"cursor": cursor})) == []


def test_application_lists_hold_only_own_rows(world: World) -> None:
    portal_a, institution_x = world.callers["portal_a"], world.callers["institution_x"]
    own_a = [world["A_decided"], world["A_open"]]
    own_b = [world["B_decided"], world["B_open"]]
    assert _ids(portal_a.get("/v1/applications")) == own_a
    assert _ids(world.portal_b.get("/v1/applications")) == own_b
    assert _ids(institution_x.get("/v1/applications")) == own_a
    assert _ids(world.institution_y.get("/v1/applications")) == own_b
    assert _ids(world.callers["admin"].get("/v1/applications")) == own_a + own_b
    assert _ids(portal_a.get("/v1/applications", params={"firm_id": world["FB"]})) == []
    assert _ids(institution_x.get("/v1/applications", params={"product_id": world["PY"]})) == []
    assert _ids(institution_x.get("/v1/applications", params={"status": "approved"})) == [
        world["A_decided"]
    ]


def test_product_list_is_the_public_catalogue(world: World) -> None:
    everyone = [world.callers[role] for role in ROLES]
    for api in everyone:
        assert _ids(api.get("/v1/products")) == [world["PX"], world["PY"]]
    filtered = world.callers["official_116"].get(
        "/v1/products", params={"institution_id": _institution_of(world)}
    )
    assert _ids(filtered) == [world["PX"]]


def _institution_of(world: World) -> int:
    product = world.callers["admin"].get(f"/v1/products/{world['PX']}").json()
    return int(product["institution_id"])


def test_inactive_products_are_seen_by_their_institution_only(world: World) -> None:
    institution_x = world.callers["institution_x"]
    paused = institution_x.patch(
        f"/v1/products/{world['PX']}", json={"active": False}, headers={"If-Match": '"1"'}
    )
    assert paused.status_code == 200, paused.text
    assert institution_x.get(f"/v1/products/{world['PX']}").status_code == 200
    for api in (world.callers["portal_a"], world.institution_y, world.callers["official_city"]):
        assert api.get(f"/v1/products/{world['PX']}").status_code == 404
        assert world["PX"] not in _ids(api.get("/v1/products"))
        own_view = {"institution_id": _institution_of(world), "include_inactive": "true"}
        assert world["PX"] not in _ids(api.get("/v1/products", params=own_view))
    assert world["PX"] in _ids(
        institution_x.get(
            "/v1/products",
            params={"institution_id": _institution_of(world), "include_inactive": "true"},
        )
    )


# An institution sees a firm only through a live application to one of its products.


def test_institution_sees_a_firm_only_while_it_applies(world: World) -> None:
    portal_a, institution_y = world.callers["portal_a"], world.institution_y
    firm_c = _created(portal_a.post("/v1/firms", json=data.firm(3, town_code=TANGXIA)))["id"]
    assert institution_y.get(f"/v1/firms/{firm_c}").status_code == 404
    assert world.callers["institution_x"].get(f"/v1/firms/{firm_c}").status_code == 404

    application = _apply(portal_a, firm_c, world["PY"])
    seen = institution_y.get(f"/v1/firms/{firm_c}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["id"] == firm_c
    # An application to Y's product shows nothing to X.
    assert world.callers["institution_x"].get(f"/v1/firms/{firm_c}").status_code == 404

    withdrawn = portal_a.post(f"/v1/applications/{application}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    gone = institution_y.get(f"/v1/firms/{firm_c}")
    assert gone.status_code == 404
    assert data.firm(3)["name"] not in gone.text
    # The lead itself stays in Y's list, marked withdrawn, so Y knows to stop.
    assert institution_y.get(f"/v1/applications/{application}").json()["status"] == "withdrawn"


def test_a_decided_application_keeps_the_firm_visible_to_its_institution(world: World) -> None:
    institution_x = world.callers["institution_x"]
    withdrawn = world.callers["portal_a"].post(f"/v1/applications/{world['A_open']}/withdraw")
    assert withdrawn.status_code == 200
    # The approved application is still live (the loan exists): X still sees FA.
    assert institution_x.get(f"/v1/firms/{world['FA']}").status_code == 200
    assert institution_x.get(f"/v1/firms/{world['FB']}").status_code == 404


def test_a_revoked_consent_ends_that_institutions_reads_only(world: World) -> None:
    portal_a, institution_x = world.callers["portal_a"], world.callers["institution_x"]
    firm_a = world["FA"]
    # Portal A cannot reach portal B's consent through its own firm either.
    crossed = portal_a.post(f"/v1/firms/{firm_a}/consents/{world['CB']}/revoke")
    assert crossed.status_code == 404
    assert world.institution_y.get(f"/v1/firms/{world['FB']}").status_code == 200

    revoked = portal_a.post(f"/v1/firms/{firm_a}/consents/{world['CA']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["application_ids"] == [world["A_decided"], world["A_open"]]
    gone = institution_x.get(f"/v1/firms/{firm_a}")
    assert gone.status_code == 404
    assert world.firms["FA"]["name"] not in gone.text
    # The leads and the decision stay with X, marked; the firm's own portal and the admin
    # still read the firm; Y's consent from FB is untouched.
    lead = institution_x.get(f"/v1/applications/{world['A_decided']}")
    assert lead.json()["consent_withdrawn_at"] == revoked.json()["revoked_at"]
    decision = institution_x.get(f"/v1/applications/{world['A_decided']}/decision")
    assert decision.status_code == 200
    assert portal_a.get(f"/v1/firms/{firm_a}").status_code == 200
    assert world.callers["admin"].get(f"/v1/firms/{firm_a}").status_code == 200
    assert world.institution_y.get(f"/v1/firms/{world['FB']}").status_code == 200
    # Revoking again: the same record.
    again = portal_a.post(f"/v1/firms/{firm_a}/consents/{world['CA']}/revoke")
    assert again.status_code == 200
    assert again.json() == revoked.json()


# Officials: their town, or the whole city for a city official.


def test_town_official_sees_own_town_only(world: World) -> None:
    tangxia, humen = world.callers["official_116"], world.callers["official_121"]
    own = tangxia.get("/v1/stats/breakdown", params={"by": "town"})
    assert own.status_code == 200, own.text
    assert own.json()["town_code"] == TANGXIA
    assert [row["key"] for row in own.json()["rows"]] == [TANGXIA]
    assert own.json()["rows"][0]["suppressed"] is True  # two firms: too few to show
    assert tangxia.get("/v1/stats/overview").json()["applications"] == 2
    other = tangxia.get("/v1/stats/breakdown", params={"by": "town", "town_code": HUMEN})
    assert other.status_code == 404
    assert other.json()["code"] == "not_found"
    assert tangxia.get("/v1/stats/firms", params={"town_code": HUMEN}).status_code == 404
    firms = humen.get("/v1/stats/firms")
    assert firms.status_code == 200, firms.text
    assert firms.json()["town_code"] == HUMEN
    assert firms.json()["firms"] == 1
    # An unknown town is as absent as another town.
    assert tangxia.get("/v1/stats/firms", params={"town_code": "441900999"}).status_code == 404


def test_city_official_sees_every_town(world: World) -> None:
    city = world.callers["official_city"]
    by_town = city.get("/v1/stats/breakdown", params={"by": "town"})
    assert by_town.status_code == 200, by_town.text
    assert by_town.json()["town_code"] is None
    rows = {row["key"]: row for row in by_town.json()["rows"]}
    assert sorted(rows) == [TANGXIA, HUMEN]
    for town in (TANGXIA, HUMEN):
        overview = city.get("/v1/stats/overview", params={"town_code": town})
        assert overview.json()["approvals"] == 1
    firms = city.get("/v1/stats/firms")
    assert firms.json()["firms"] == 2
    for town in (TANGXIA, HUMEN):
        one = city.get("/v1/stats/firms", params={"town_code": town})
        assert one.status_code == 200
        assert one.json() == {**one.json(), "town_code": town, "firms": 1}


def test_statistics_cache_is_per_official(world: World) -> None:
    """The stats cache is keyed by principal: one official's answer never serves another's."""
    params = {"by": "town"}
    city = world.callers["official_city"].get("/v1/stats/breakdown", params=params)
    assert len(city.json()["rows"]) == 2
    town = world.callers["official_116"].get("/v1/stats/breakdown", params=params)
    assert [row["key"] for row in town.json()["rows"]] == [TANGXIA]


# Keys.


def test_a_revoked_key_is_refused_at_once(world: World) -> None:
    admin, stack = world.callers["admin"], world.stack
    holder = _created(admin.post("/v1/admin/principals", json={"role": "portal", "name": "撤"}))
    made = _created(admin.post("/v1/admin/keys", json={"principal_id": holder["id"]}))
    api = Api(stack.client, made["key"])
    assert api.get("/v1/firms").status_code == 200  # the key is now in the key cache
    revoked = admin.post(f"/v1/admin/keys/{made['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    refused = api.get("/v1/firms")
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_key"


def test_refused_revocations_leave_the_key_working(world: World) -> None:
    spare = world["spare_key"]
    for role in ("portal_a", "institution_x", "official_city"):
        assert world.callers[role].post(f"/v1/admin/keys/{spare}/revoke").status_code == 404
    keys = world.callers["admin"].post(f"/v1/admin/keys/{spare}/revoke")
    assert keys.json()["revoked"] is True


def test_ids_cannot_be_probed(world: World) -> None:
    """An id that exists in another tenant and one that exists nowhere answer alike."""
    portal_a = world.callers["portal_a"]
    other = portal_a.get(f"/v1/firms/{world['FB']}")
    missing = portal_a.get("/v1/firms/987654")
    assert other.status_code == missing.status_code == 404
    assert other.json()["code"] == missing.json()["code"] == "not_found"
    assert other.json()["detail"].replace(str(world["FB"]), "N") == missing.json()[
        "detail"
    ].replace("987654", "N")


def test_portal_b_own_firm_untouched_by_portal_a(world: World) -> None:
    """After every refused write of portal A, portal B's firm is as B left it."""
    portal_a = world.callers["portal_a"]
    fb = world["FB"]
    assert portal_a.post("/v1/firms", json=world.firms["FB"] | {"employees": 1}).status_code == 409
    bulk = portal_a.post(
        "/v1/firms/bulk",
        params={"import_id": "take-over"},
        **_ndjson(world.firms["FB"] | {"employees": 1}),
    )
    assert bulk.status_code == 200
    [line, summary] = [json.loads(part) for part in bulk.text.splitlines()]
    assert line["status"] != "updated"
    assert summary["summary"]["updated"] == 0
    assert portal_a.patch(f"/v1/firms/{fb}", json={"employees": 1}).status_code == 404
    assert portal_a.delete(f"/v1/firms/{fb}").status_code == 404
    mine = world.portal_b.get(f"/v1/firms/{fb}")
    assert mine.status_code == 200
    assert mine.json()["employees"] == world.firms["FB"]["employees"]
    assert mine.headers["etag"] == '"1"'
