"""Two matching replicas over one registry and Redis: one runs the training job, both serve.

Both replicas poll the registry only once an hour here, so the one that did not train can
learn of the promotion only from the announcement on Redis (pub/sub).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from services.registry.db import make_engine
from services.registry.seed.loader import seed_demo
from tests.e2e.cluster import Cluster, Service
from tests.e2e.conftest import cluster_of

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _seed(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert seed_demo(engine, n_firms=150, n_applications=320, progress=False).seeded
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_of("replicas", log_dir=tmp_path_factory.mktemp("e2e-logs")) as c:
        c.start_registry(before_serve=_seed)
        hourly = {"FINMATCH_MODEL_POLL_SECONDS": "3600"}
        a = c.start_matching("matching-a", **hourly)
        b = c.start_matching("matching-b", **hourly)
        a.wait_ready()
        b.wait_ready()
        yield c


def current(cluster: Cluster, replica: Service) -> dict[str, Any]:
    answer = httpx.get(
        f"{replica.url}/internal/models/current",
        headers={"X-Internal-Token": cluster.internal_token},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def train(cluster: Cluster, replica: Service) -> httpx.Response:
    return httpx.post(
        f"{replica.url}/internal/models/train",
        json={},
        headers={"X-Internal-Token": cluster.internal_token},
        timeout=120,
    )


def finished_job(cluster: Cluster, job_id: int) -> dict[str, Any]:
    """The registry's record of the job, once it is no longer queued or running."""
    deadline = time.monotonic() + 300
    while True:
        answer = httpx.get(
            f"{cluster.services['registry'].url}/internal/training-jobs/{job_id}",
            headers={"X-Internal-Token": cluster.internal_token},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["status"] not in {"queued", "running"} or time.monotonic() > deadline:
            return job
        time.sleep(0.25)


def test_internal_routes_need_the_token(replicas: Cluster) -> None:
    a = replicas.services["matching-a"]
    assert httpx.get(f"{a.url}/internal/models/current", timeout=10).status_code == 401
    wrong = httpx.get(
        f"{a.url}/internal/models/current", headers={"X-Internal-Token": "wrong"}, timeout=10
    )
    assert wrong.status_code == 401


def test_one_trains_both_serve_the_promoted_model(replicas: Cluster) -> None:
    a, b = replicas.services["matching-a"], replicas.services["matching-b"]
    assert current(replicas, a)["is_prior"] is True
    assert current(replicas, b)["is_prior"] is True

    # Both asked at once: one training job across the replicas (the registry's unique index).
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda replica: train(replicas, replica), [a, b]))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [202, 409], [answer.text for answer in answers]
    queued = next(answer for answer in answers if answer.status_code == 202).json()
    refused = next(answer for answer in answers if answer.status_code == 409).json()
    assert (refused["code"], refused["job_id"]) == ("training_in_progress", queued["id"])
    job = finished_job(replicas, queued["id"])
    assert job["status"] == "succeeded", job
    trained = job["outcome"]
    assert trained["promoted"] is True, trained
    version = trained["version"]

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        serving = [current(replicas, replica) for replica in (a, b)]
        if all(model["version"] == version for model in serving):
            break
        time.sleep(0.2)
    assert [(m["version"], m["is_prior"]) for m in serving] == [(version, False)] * 2, serving
    assert all(model["last_error"] is None for model in serving), serving
