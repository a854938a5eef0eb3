"""Matching fixtures: a real registry (in-process, on each backend) seeded with a small world."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from services.matching.config import MatchingSettings
from services.matching.registry_client import RegistryClient
from services.registry.config import RegistrySettings
from services.registry.main import create_app as create_registry
from services.registry.seed.loader import seed_demo

TOKEN = "test-internal-token"
SEEDED_AT = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def registry_app(engine: Engine) -> FastAPI:
    return create_registry(RegistrySettings(internal_token=TOKEN, database_url="unused://"), engine)


@pytest.fixture
def seeded_registry(registry_app: FastAPI, engine: Engine) -> FastAPI:
    seed_demo(engine, n_firms=1_500, n_applications=2_500, now=SEEDED_AT, progress=False)
    return registry_app


def registry_client(app: FastAPI) -> RegistryClient:
    return RegistryClient(
        "http://registry", TOKEN, transport=httpx.ASGITransport(app=app), timeout=60
    )


def matching_settings(**overrides: object) -> MatchingSettings:
    values: dict[str, object] = {
        "internal_token": TOKEN,
        "model_signing_key": "test-signing-key",
        "auto_retrain": False,
        "model_poll_seconds": 3600,
        "min_training_rows": 200,
    }
    return MatchingSettings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture
def settings() -> MatchingSettings:
    return matching_settings()
