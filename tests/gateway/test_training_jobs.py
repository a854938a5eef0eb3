"""Training as a job through the gateway: 202 and a job to poll, one at a time, failures said.

The stack is in-process (tests/gateway/conftest.py): the matching service's job runs as a
task on the TestClient's event loop, its training in a worker process, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry.seed.loader import seed_demo
from tests.gateway.conftest import Api, Stack, running_stack
from tests.matching.conftest import SEEDED_AT
from tests.polling import wait_until

TRAINING_TIMEOUT = 300.0  # two cores shared with other runs: a training can take a minute


def decided(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM decision")).scalar_one())


def finished(admin: Api, job_id: int) -> dict[str, Any]:
    """Poll the job until it is no longer queued or running."""
    seen: dict[str, Any] = {}

    def done() -> bool:
        answer = admin.get(f"/v1/admin/models/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        seen.update(answer.json())
        assert 0.0 <= seen["progress"] <= 1.0
        return seen["status"] in {"succeeded", "failed"}

    # A training takes seconds to minutes: asking every 10 ms would meet the rate limit.
    wait_until(done, timeout=TRAINING_TIMEOUT, interval=0.25)
    return seen


@pytest.fixture
def seeded(engine: Engine) -> Iterator[Stack]:
    seed_demo(engine, n_firms=1_500, n_applications=2_500, now=SEEDED_AT, progress=False)
    with running_stack(engine) as stack:
        yield stack


def test_train_answers_202_a_second_request_409_and_the_job_succeeds(seeded: Stack) -> None:
    admin = seeded.admin
    queued = admin.post("/v1/admin/models/train", json={})
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert queued.headers["location"] == f"/v1/admin/models/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert (job["trigger"], job["auto_promote"], job["outcome"]) == ("admin", True, None)

    # The first job takes seconds (a worker process starts, then trains): still active.
    busy = admin.post("/v1/admin/models/train", json={"auto_promote": False})
    assert busy.status_code == 409, busy.text
    assert busy.headers["content-type"] == "application/problem+json"
    assert (busy.json()["code"], busy.json()["job_id"]) == ("training_in_progress", job["id"])

    done = finished(admin, job["id"])
    assert done["status"] == "succeeded", done
    assert (done["progress"], done["stage"], done["error"]) == (1.0, "done", None)
    assert done["started_at"] <= done["finished_at"]
    assert done["metrics"]["auc"] > 0.7
    # Chosen on the holdout, then refitted on every decided row.
    assert done["refit"]["rows"] == decided(seeded.engine)
    assert len(done["refit"]["data_sha256"]) == 64
    outcome = done["outcome"]
    assert outcome["promoted"] is True
    assert outcome["reason"].startswith("no champion yet")
    models = {m["version"]: m for m in admin.get("/v1/admin/models").json()}
    served = models[outcome["version"]]
    assert served["status"] == "champion"
    assert served["meta"]["refit"]["rows"] == done["refit"]["rows"]
    assert served["meta"]["rows"]["train"] < done["refit"]["rows"]
    assert served["meta"]["data_sha256"] == done["refit"]["data_sha256"]

    listed = admin.get("/v1/admin/models/jobs").json()
    assert [j["id"] for j in listed] == [job["id"]]  # the 409 started nothing
    # Done: the next request starts a new job.
    again = admin.post("/v1/admin/models/train", json={"auto_promote": False})
    assert again.status_code == 202, again.text
    assert again.json()["id"] != job["id"]
    second = finished(admin, again.json()["id"])
    assert second["outcome"]["promoted"] is False
    assert second["outcome"]["reason"].endswith("left as a candidate (auto_promote is off)")


def test_unknown_job_is_404(stack: Stack) -> None:
    missing = stack.admin.get("/v1/admin/models/jobs/424242")
    assert missing.status_code == 404
    assert missing.json()["code"] == "job_not_found"
    assert stack.admin.get("/v1/admin/models/jobs/0").status_code == 422  # not an id
    assert stack.admin.get("/v1/admin/models/jobs").json() == []


def test_too_few_decisions_is_a_422_before_any_job(stack: Stack) -> None:
    refused = stack.admin.post("/v1/admin/models/train", json={})
    assert refused.status_code == 422
    assert refused.json()["code"] == "training_refused"
    assert "need at least 200" in refused.json()["detail"]
    assert stack.admin.get("/v1/admin/models/jobs").json() == []


def test_a_job_the_data_refuses_fails_and_says_why(engine: Engine) -> None:
    """Enough rows for the up-front count, too few of each outcome to train on: only the
    training finds out, so the job fails and its error says why."""
    seed_demo(engine, n_firms=60, n_applications=40, now=SEEDED_AT, progress=False)
    with running_stack(engine, matching={"min_training_rows": 1}) as stack:
        queued = stack.admin.post("/v1/admin/models/train", json={})
        assert queued.status_code == 202, queued.text
        done = finished(stack.admin, queued.json()["id"])
    assert done["status"] == "failed"
    assert "need at least 20 of each" in done["error"]
    assert done["outcome"] is None
    assert done["finished_at"] is not None


async def post_and_hang_up(app: Any, key: str) -> None:
    """POST /v1/admin/models/train as a client that is gone when the answer comes."""
    body = b'{"auto_promote": true}'
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/admin/models/train",
        "raw_path": b"/v1/admin/models/train",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more from this client
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        raise OSError("the client hung up")  # the socket is closed: nothing can be written

    with contextlib.suppress(OSError, httpx.HTTPError):
        await app(scope, receive, send)


def test_a_client_that_hangs_up_does_not_stop_the_job(seeded: Stack) -> None:
    client = seeded.client
    assert client.portal is not None
    client.portal.call(post_and_hang_up, client.app, seeded.admin.key)
    listed = seeded.admin.get("/v1/admin/models/jobs").json()
    assert len(listed) == 1, listed  # the job was queued though no answer was delivered
    done = finished(seeded.admin, listed[0]["id"])
    assert done["status"] == "succeeded", done
    assert done["refit"]["rows"] == decided(seeded.engine)
    assert seeded.admin.get("/v1/admin/models").json()[0]["version"] == done["outcome"]["version"]
