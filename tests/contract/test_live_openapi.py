"""schemathesis (`st run --checks all`) against the live three-process stack, once per role.

The gateway's /openapi.json is the contract a client is generated from; every check of
schemathesis holds it to what the running gateway does: documented statuses, media types and
headers, schema-valid requests accepted and invalid ones refused, 405s with Allow, and (our own
check, tests/contract/hooks.py) every problem's code listed by its operation. PostgreSQL and
Redis are real; rate limits are raised so that the run is not throttled.

FINMATCH_CONTRACT_MAX_EXAMPLES raises the examples per operation for a deeper run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
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


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_nothing(live: Live, role: str, tmp_path: Path) -> None:
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
        "--workers",
        "2",
        "--no-color",
        "--report-dir",
        str(tmp_path),
    ]
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.contract.hooks",
        "PYTHONPATH": str(HERE.parents[1]),
    }
    done = subprocess.run(
        command,
        env=env,
        cwd=HERE.parents[1],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"{role}:\n{done.stdout[-20_000:]}\n{done.stderr[-5_000:]}"
