"""The client as a package: it installs alone, its models agree with the gateway's OpenAPI,
its sync half is what its async half makes, and its retry rules."""

from __future__ import annotations

import email.utils
import importlib.util
import inspect
import os
import random
import subprocess
import sys
import time
import tomllib
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import finmatch_client
from finmatch_client import RetryPolicy, make_call
from finmatch_client import models as client_models
from finmatch_client._core import expect_nothing, parse_retry_after
from tests.client.conftest import World

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "clients" / "python"
# Components of the OpenAPI that are no model of the client: pages are one generic Page[T];
# FastAPI's own validation error is never answered (the API answers ProblemDetails).
NOT_MODELS = {"HTTPValidationError", "ValidationError"}


def test_the_client_imports_nothing_of_the_project() -> None:
    """Installed alone (only clients/python on the path), it needs no service and no shared/."""
    code = (
        "import sys, finmatch_client, finmatch_client.models\n"
        "roots = {name.split('.')[0] for name in sys.modules}\n"
        "print(sorted(roots & {'shared', 'services', 'fastapi', 'sqlmodel', 'tests'}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(CLIENT)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=CLIENT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_dependencies_are_httpx_pydantic_and_standardwebhooks_pinned_alike() -> None:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].strip() for dep in project["dependencies"]}
    assert names == {"httpx", "pydantic", "standardwebhooks"}
    pinned = {
        line.split("==")[0].lower()
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    assert names <= pinned


def test_the_sync_client_is_what_the_async_one_makes() -> None:
    spec = importlib.util.spec_from_file_location("unasync", CLIENT / "tools" / "unasync.py")
    assert spec is not None
    assert spec.loader is not None
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    assert unasync.main(["--check"]) == 0, "run clients/python/tools/unasync.py"


def test_sync_and_async_clients_offer_the_same_calls() -> None:
    sync_client = finmatch_client.FinmatchClient("http://127.0.0.1:9", "k")
    async_client = finmatch_client.AsyncFinmatchClient("http://127.0.0.1:9", "k")
    groups = [g for g in vars(sync_client) if not g.startswith("_")]
    assert groups == [g for g in vars(async_client) if not g.startswith("_")]
    for group in groups:
        sync_group, async_group = getattr(sync_client, group), getattr(async_client, group)
        methods = {m for m in dir(sync_group) if not m.startswith("_")}
        assert methods == {m for m in dir(async_group) if not m.startswith("_")}
        for method in methods:
            sync_params = inspect.signature(getattr(sync_group, method)).parameters
            async_params = inspect.signature(getattr(async_group, method)).parameters
            assert list(sync_params) == list(async_params), f"{group}.{method}"
    sync_client.close()


def _client_model(name: str) -> Any:
    return getattr(client_models, name, None)


def test_models_agree_with_the_gateways_openapi(world: World) -> None:
    """Every schema of the live gateway's OpenAPI has a client model of the same name with the
    same fields, the same required ones, and (for an enumeration) the same values."""
    spec = httpx.get(f"{world.url}/openapi.json", timeout=30).json()
    problems: list[str] = []
    for name, schema in spec["components"]["schemas"].items():
        if name in NOT_MODELS or name.startswith("Page_"):
            continue
        model = _client_model(name)
        if model is None:
            problems.append(f"{name}: no client model")
        elif "enum" in schema:
            if not issubclass(model, Enum) or {m.value for m in model} != set(schema["enum"]):
                problems.append(f"{name}: values differ")
        elif issubclass(model, BaseModel):
            fields = model.model_fields
            if set(fields) != set(schema.get("properties", {})):
                differ = set(fields) ^ set(schema.get("properties", {}))
                problems.append(f"{name}: fields differ: {sorted(differ)}")
            required = {f for f, info in fields.items() if info.is_required()}
            if required != set(schema.get("required", [])):
                differ = required ^ set(schema.get("required", []))
                problems.append(f"{name}: required fields differ: {sorted(differ)}")
    assert problems == []


def test_unsafe_calls_carry_a_key_made_once_and_kept() -> None:
    post = make_call("POST", "/v1/firms", expect_nothing)
    assert post.idempotency_key is not None
    assert make_call("POST", "/v1/firms", expect_nothing).idempotency_key != post.idempotency_key
    assert make_call("DELETE", "/v1/firms/1", expect_nothing).idempotency_key is not None
    assert make_call("GET", "/v1/firms", expect_nothing).idempotency_key is None
    mine = make_call("PATCH", "/v1/firms/1", expect_nothing, idempotency_key="k-1", if_match='"3"')
    assert mine.headers == {"Idempotency-Key": "k-1", "If-Match": '"3"'}


def _answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(max_retries=3, retry_after_max=30.0, rng=random.Random(1))
    assert policy.after_answer(0, _answer(429, **{"Retry-After": "2"})) == 2.0
    assert policy.after_answer(0, _answer(503, **{"Retry-After": "30"})) == 30.0
    # Longer than the cap: not waited for; the error goes to the caller with retry_after.
    assert policy.after_answer(0, _answer(503, **{"Retry-After": "31"})) is None
    assert policy.after_answer(3, _answer(429, **{"Retry-After": "1"})) is None  # spent
    assert policy.after_answer(0, _answer(500)) is None
    assert policy.after_answer(0, _answer(404)) is None
    in_flight = httpx.Response(409, json={"code": "idempotency_in_flight"})
    assert policy.after_answer(0, in_flight) is not None
    assert policy.after_answer(0, httpx.Response(409, json={"code": "conflict"})) is None


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0, rng=random.Random(7))
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert all(0.0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling * 0.8  # jitter spreads over the whole range
    assert policy.after_error(2) is not None
    assert policy.after_error(3) is None


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    parsed = parse_retry_after(later)
    assert parsed is not None
    assert 55 <= parsed <= 60
    assert parse_retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 413, 422, 428, 429, 500, 503])
def test_each_problem_status_has_its_error_class(status: int) -> None:
    problem = {"type": "t", "title": "x", "status": status, "code": "c", "detail": "d"}
    response = httpx.Response(status, json=problem, headers={"X-Request-Id": "r-1"})
    call = make_call("GET", "/x", expect_nothing)
    with pytest.raises(finmatch_client.ApiError) as raised:
        finmatch_client._core.outcome(call, response)
    assert raised.value.status == status
    assert raised.value.request_id == "r-1"
    assert type(raised.value).status == (500 if status == 500 else status)
    assert inspect.isclass(type(raised.value))
