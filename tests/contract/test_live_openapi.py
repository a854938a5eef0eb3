"""schemathesis (`st run --checks all`) against the live three-process stack, once per role.

The gateway's /openapi.json is the contract a client is generated from; every check of
schemathesis holds it to what the running gateway does: documented statuses, media types and
headers, schema-valid requests accepted and invalid ones refused, 405s with Allow, and (our own
check, tests/contract/hooks.py) every problem's code listed by its operation. PostgreSQL and
Redis are real; rate limits are raised so that the run is not throttled.

A few refusals of schema-valid requests are right and beyond what JSON Schema can state (a min
above its max, a date in the future, what stored data decides): hooks.REFUSALS_BEYOND_SCHEMA
names each, by operation, problem code and field, and schemathesis counts them as "dropped by
filter_failure"; every other failure fails the run. The seed is fixed.

FINMATCH_CONTRACT_MAX_EXAMPLES raises the examples per operation for a deeper run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.registry.db import make_engine
from services.registry.seed.loader import seed_demo
from tests.e2e.conftest import cluster_of

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

HERE = Path(__file__).parent
SEED = 20201218
MAX_EXAMPLES = int(os.environ.get("FINMATCH_CONTRACT_MAX_EXAMPLES", "5"))
RUN_TIMEOUT_SECONDS = 300
RUNS_AT_ONCE = 2  # the roles' runs side by side, each its own process
# The admin runs last: it may revoke the other roles' keys (its own is the bootstrap key, which
# no call revokes).
ROLES = ("portal", "institution", "official_city", "official_town", "admin")
UNLIMITED = {
    **{f"FINMATCH_RATE_LIMIT_{role}": "1000000000" for role in ("PORTAL", "INSTITUTION")},
    **{f"FINMATCH_RATE_LIMIT_{role}": "1000000000" for role in ("OFFICIAL", "ADMIN")},
    "FINMATCH_AUTH_FAILURES_PER_ADDRESS": "1000000000",
    "FINMATCH_AUTH_FAILURES_PER_KEY_PREFIX": "1000000000",
}


@dataclass
class Live:
    url: str
    keys: dict[str, str]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    keys: dict[str, str] = {}

    def seed(database_url: str) -> None:
        engine = make_engine(database_url)
        try:
            seeded = seed_demo(engine, n_firms=60, n_applications=80, seed=SEED, progress=False)
        finally:
            engine.dispose()
        keys.update(seeded.keys)

    with cluster_of("contract", log_dir=tmp_path_factory.mktemp("contract-logs")) as cluster:
        cluster.start_registry(seed)
        matching = cluster.start_matching()
        gateway = cluster.start_gateway(matching, **UNLIMITED)
        matching.wait_ready()
        gateway.wait_ready()
        keys["admin"] = cluster.admin_key
        yield Live(url=gateway.url, keys=keys)


def _st() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if found is None:
        pytest.fail("schemathesis's `st` is not installed (pip install -e '.[dev]')")
    return found


def _run(live: Live, role: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [
        _st(),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{live.url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {live.keys[role]}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        # One thread per run: with two, hypothesis describes its strategies' lambdas (ast.parse)
        # in both at once, which CPython 3.11's parser is not safe for ("AST constructor
        # recursion depth mismatch", or a KeyError from hypothesis's source cache) in the
        # coverage phase. Runs go side by side as processes instead (RUNS_AT_ONCE).
        "--workers",
        "1",
        "--no-color",
        "--report-dir",
        str(report_dir),
    ]
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.contract.hooks",
        "PYTHONPATH": str(HERE.parents[1]),
    }
    return subprocess.run(
        command,
        env=env,
        cwd=HERE.parents[1],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(
    live: Live, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every role's run: the others RUNS_AT_ONCE at a time, then the admin's alone."""

    def run(role: str) -> subprocess.CompletedProcess[str]:
        return _run(live, role, tmp_path_factory.mktemp(f"st-{role}"))

    others = [role for role in ROLES if role != "admin"]
    with ThreadPoolExecutor(max_workers=RUNS_AT_ONCE) as pool:
        done = dict(zip(others, pool.map(run, others), strict=True))
    done["admin"] = run("admin")
    return done


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_nothing(
    runs: dict[str, subprocess.CompletedProcess[str]], role: str
) -> None:
    done = runs[role]
    assert done.returncode == 0, f"{role}:\n{done.stdout[-20_000:]}\n{done.stderr[-5_000:]}"
