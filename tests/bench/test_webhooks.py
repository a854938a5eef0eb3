"""The webhook benchmark in --quick mode (200 events at 100/s), on both backends, so it cannot rot.

Timings are not checked (the machine may be busy): what is delivered is. Every event reaches
the receiver exactly once as a success, the receiver's failures are retried, and every request
verifies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.webhook_receiver import fails_first_attempt
from tests.services import need_postgres

REPO = Path(__file__).resolve().parents[2]


def test_the_receiver_fails_a_share_of_ids_that_does_not_depend_on_their_order() -> None:
    ids = [f"msg_{n}" for n in range(10_000)]
    failing = {i for i in ids if fails_first_attempt(i, 0.2)}
    assert 1_800 < len(failing) < 2_200
    assert failing == {i for i in reversed(ids) if fails_first_attempt(i, 0.2)}
    assert not any(fails_first_attempt(i, 0.0) for i in ids)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_quick_run_delivers_every_event_once_and_retries_the_failed_ones(
    backend: str, tmp_path: Path
) -> None:
    report_file = tmp_path / "webhooks.json"
    env = {k: v for k, v in os.environ.items() if k != "FINMATCH_BENCH_POSTGRES_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    if backend == "postgres":
        env["FINMATCH_BENCH_POSTGRES_URL"] = need_postgres()
    command = [
        sys.executable, "-m", "bench.webhooks", "--quick", "--floor-events", "50",
        "--database", f"finmatch_bench_webhooks_test_{os.getpid()}", "--json", str(report_file),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert ("SQLite" in done.stdout) == (backend == "sqlite")
    assert "targets" in done.stdout

    report = json.loads(report_file.read_text())
    assert report["produced"] == report["delivered"] == 200
    assert report["undelivered"] == 0
    assert report["duplicates"] == 0
    assert report["verification_failures"] == 0
    assert report["split_ids"] == 0
    # About a fifth failed once and came again: one more request each, on the 2 s schedule.
    retried = report["retried"]["count"]
    assert 10 < retried < 90
    assert report["first_attempt"]["count"] + retried == 200
    assert report["requests_received"] == 200 + retried
    assert [gap["scheduled"] for gap in report["retry_gaps"]] == [2.0]
    assert report["retry_gaps"][0]["count"] == retried
    assert report["retry_gaps"][0]["p50"] >= 2.0 * 0.9
    # The warm-up event is delivered too, and nothing is left pending.
    assert report["statuses"] == {"delivered": 201}
    assert report["floor"]["received"] == report["floor"]["requests"] == 50
    assert report["cpu_seconds"]["dispatcher"] > 0
    assert report["cpu_seconds"]["producer"] > 0
    assert report["dispatcher_exit_code"] == 0  # SIGTERM: a graceful stop
