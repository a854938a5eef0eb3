"""Training jobs in the registry: one active at a time, runner reports, a lost runner's lease."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.registry.config import RegistrySettings
from services.registry.main import create_app
from tests.registry.conftest import TOKEN

H = {"X-Internal-Token": TOKEN}


def create(client: TestClient, runner: str = "r1", lease: float = 60.0) -> Any:
    return client.post(
        "/internal/training-jobs",
        json={"trigger": "admin", "requested_by": 1, "runner": runner, "lease_seconds": lease},
        headers=H,
    )


def report(client: TestClient, job_id: int, runner: str = "r1", **body: Any) -> Any:
    return client.post(
        f"/internal/training-jobs/{job_id}/report",
        json={"runner": runner, "lease_seconds": 60.0, **body},
        headers=H,
    )


def test_a_job_runs_to_success_and_only_one_is_active(client: TestClient) -> None:
    created = create(client)
    assert created.status_code == 201, created.text
    job = created.json()
    assert created.headers["Location"] == f"/internal/training-jobs/{job['id']}"
    assert (job["status"], job["progress"], job["started_at"]) == ("queued", 0.0, None)

    busy = create(client, runner="r2")
    assert busy.status_code == 409
    assert (busy.json()["code"], busy.json()["job_id"]) == ("training_in_progress", job["id"])

    running = report(client, job["id"], status="running", stage="training", progress=0.3)
    assert running.status_code == 200, running.text
    assert running.json()["started_at"] is not None
    assert create(client, runner="r2").json()["job_id"] == job["id"]  # still busy

    outcome = {"version": "m-1", "algorithm": "lr", "promoted": True, "reason": "first"}
    done = report(
        client,
        job["id"],
        status="succeeded",
        stage="done",
        progress=1.0,
        metrics={"auc": 0.8},
        refit={"rows": 900, "data_sha256": "ab" * 32},
        outcome=outcome,
    ).json()
    assert done["status"] == "succeeded"
    assert done["finished_at"] is not None
    assert done["refit"] == {"rows": 900, "data_sha256": "ab" * 32}
    assert done["outcome"]["version"] == "m-1"
    assert client.get(f"/internal/training-jobs/{job['id']}", headers=H).json() == done

    # Finished: a new job may start, and the old one takes no more reports.
    second = create(client, runner="r2")
    assert second.status_code == 201
    late = report(client, job["id"], progress=0.5)
    assert (late.status_code, late.json()["code"]) == (409, "job_finished")
    listed = client.get("/internal/training-jobs", headers=H).json()
    assert [j["id"] for j in listed] == [second.json()["id"], job["id"]]  # newest first


def test_reports_from_another_runner_or_out_of_order_are_refused(client: TestClient) -> None:
    job = create(client).json()
    other = report(client, job["id"], runner="intruder", progress=0.9)
    assert (other.status_code, other.json()["code"]) == (409, "job_not_owned")
    skipped = report(client, job["id"], status="succeeded")
    assert (skipped.status_code, skipped.json()["code"]) == (409, "invalid_transition")
    failed = report(client, job["id"], status="failed", error="too few decisions").json()
    assert (failed["status"], failed["error"]) == ("failed", "too few decisions")


def test_unknown_job_and_bad_input(client: TestClient) -> None:
    missing = client.get("/internal/training-jobs/999", headers=H)
    assert (missing.status_code, missing.json()["code"]) == (404, "job_not_found")
    assert report(client, 999, progress=0.1).status_code == 404
    bad = client.post(
        "/internal/training-jobs",
        json={"trigger": "whenever", "runner": "r", "lease_seconds": 5},
        headers=H,
    )
    assert bad.status_code == 422
    assert "trigger" in bad.text
    assert report(client, 1, progress=1.5).status_code == 422


def test_a_lost_runner_fails_its_job_and_frees_the_slot(client: TestClient) -> None:
    job = create(client, lease=0.2).json()
    assert report(client, job["id"], status="running", stage="training").status_code == 200
    # This report renewed the lease for 60 s: still blocking.
    assert create(client, runner="r2").status_code == 409

    short = client.post(
        f"/internal/training-jobs/{job['id']}/report",
        json={"runner": "r1", "lease_seconds": 0.2, "progress": 0.4},
        headers=H,
    )
    assert short.status_code == 200
    time.sleep(0.4)  # no heartbeat within the lease: the runner is presumed dead
    lost = client.get(f"/internal/training-jobs/{job['id']}", headers=H).json()
    assert lost["status"] == "failed"
    assert lost["error"].startswith("runner lost: r1 stopped reporting")
    assert "stage training" in lost["error"]
    assert create(client, runner="r2").status_code == 201
    # The old runner, if it comes back, may not write over what happened.
    back = report(client, job["id"], status="succeeded")
    assert (back.status_code, back.json()["code"]) == (409, "job_finished")


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_concurrent_requests_start_one_job(engine: Engine) -> None:
    """Several replicas asking at once: the unique partial index lets exactly one in."""
    app = create_app(RegistrySettings(internal_token=TOKEN, database_url="unused://"), engine)
    answers: list[int] = []
    barrier = threading.Barrier(6)

    def ask(runner: str) -> None:
        with TestClient(app) as own:
            barrier.wait()
            answers.append(create(own, runner=runner).status_code)

    threads = [threading.Thread(target=ask, args=(f"r{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201, 409, 409, 409, 409, 409]
