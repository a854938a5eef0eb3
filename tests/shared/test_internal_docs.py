"""The internal services' ports: their OpenAPI document only for holders of the internal token,
no documentation pages at all; /metrics and the probes stay open (the NetworkPolicies decide
who reaches the port). The gateway's public documentation stays public."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.main import create_app as create_gateway
from tests.gateway.conftest import TOKEN, gateway_settings, matching_app, registry_app

DOC_PAGES = ("/docs", "/docs/oauth2-redirect", "/redoc")


def internal_app(service: str) -> FastAPI:
    # The document needs no database: an empty in-memory one stands in.
    registry = registry_app(sa.create_engine("sqlite://"))
    if service == "registry":
        return registry
    matching, _manager = matching_app(httpx.ASGITransport(app=registry))
    return matching


@pytest.fixture(params=["registry", "matching"])
def internal(request: pytest.FixtureRequest) -> TestClient:
    # No lifespan: nothing here needs the service's dependencies.
    return TestClient(internal_app(request.param))


def test_the_openapi_document_needs_the_internal_token(internal: TestClient) -> None:
    for headers in ({}, {"X-Internal-Token": "wrong"}):
        refused = internal.get("/openapi.json", headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "internal_token_required"
        assert "paths" not in refused.text
    allowed = internal.get("/openapi.json", headers={"X-Internal-Token": TOKEN})
    assert allowed.status_code == 200, allowed.text
    paths = allowed.json()["paths"]
    assert any(path.startswith("/internal/") for path in paths)
    assert "/openapi.json" not in paths


@pytest.mark.parametrize("page", DOC_PAGES)
def test_no_documentation_pages_even_with_the_token(internal: TestClient, page: str) -> None:
    for headers in ({}, {"X-Internal-Token": TOKEN}):
        answer = internal.get(page, headers=headers)
        assert answer.status_code == 404, (page, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_metrics_and_probes_stay_open_for_the_scraper_and_the_kubelet(
    internal: TestClient,
) -> None:
    metrics = internal.get("/metrics")
    assert metrics.status_code == 200
    assert "finmatch_http_request_duration_seconds" in metrics.text
    assert internal.get("/healthz").status_code == 200


def test_the_gateways_documentation_stays_public() -> None:
    gateway = TestClient(create_gateway(gateway_settings()))
    document = gateway.get("/openapi.json")
    assert document.status_code == 200
    assert "/v1/firms" in document.json()["paths"]
    for page in ("/docs", "/redoc"):
        answer = gateway.get(page)
        assert answer.status_code == 200, page
        assert "/openapi.json" in answer.text
