"""Where the real PostgreSQL and Redis for integration tests are, and whether they are required."""

from __future__ import annotations

import os

import pytest

POSTGRES_URL = os.environ.get("FINMATCH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("FINMATCH_TEST_REDIS_URL")
REQUIRED = os.environ.get("FINMATCH_REQUIRE_SERVICES") == "1"


def need_postgres() -> str:
    """The PostgreSQL URL, or skip (fail when CI made the service mandatory)."""
    if POSTGRES_URL:
        return POSTGRES_URL
    reason = "PostgreSQL tests need FINMATCH_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    if REQUIRED:
        pytest.fail(f"FINMATCH_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def need_redis() -> str:
    if REDIS_URL:
        return REDIS_URL
    reason = "Redis tests need FINMATCH_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
    if REQUIRED:
        pytest.fail(f"FINMATCH_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)
