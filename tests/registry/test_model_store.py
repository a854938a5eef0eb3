"""The model store: upload signed artifacts, promote one champion, roll back, count decisions."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.registry.conftest import TOKEN

H = {"X-Internal-Token": TOKEN}


def upload(
    client: TestClient, version: str, artifact: bytes = b"signed-bytes"
) -> dict[str, object]:
    response = client.post(
        "/internal/models",
        json={
            "version": version,
            "algorithm": "logistic_regression",
            "metrics": {"auc": 0.8, "brier": 0.18},
            "meta": {"rows": 1000},
            "artifact_b64": base64.b64encode(artifact).decode(),
        },
        headers=H,
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_upload_promote_rollback(client: TestClient) -> None:
    assert client.get("/internal/models/champion", headers=H).status_code == 404
    first = upload(client, "m-1", b"\x00\x01binary")
    assert first["status"] == "candidate"
    assert first["size_bytes"] == 8
    artifact = client.get("/internal/models/m-1/artifact", headers=H)
    assert artifact.content == b"\x00\x01binary"

    assert client.post("/internal/models/m-1/promote", headers=H).json()["status"] == "champion"
    upload(client, "m-2")
    promoted = client.post("/internal/models/m-2/promote", headers=H).json()
    assert promoted["previous_version"] == "m-1"
    assert client.get("/internal/models/champion", headers=H).json()["version"] == "m-2"
    assert client.get("/internal/models/m-1", headers=H).json()["status"] == "retired"

    rolled = client.post("/internal/models/rollback", headers=H)
    assert rolled.status_code == 200
    assert rolled.json()["version"] == "m-1"
    assert client.get("/internal/models/champion", headers=H).json()["version"] == "m-1"
    assert client.post("/internal/models/rollback", headers=H).status_code == 409
    listed = [m["version"] for m in client.get("/internal/models", headers=H).json()]
    assert listed == ["m-2", "m-1"]


def test_bad_uploads(client: TestClient) -> None:
    upload(client, "m-1")
    duplicate = client.post(
        "/internal/models",
        json={"version": "m-1", "algorithm": "x", "metrics": {}, "meta": {}, "artifact_b64": ""},
        headers=H,
    )
    assert duplicate.status_code == 409
    for body, field in [
        (
            {"version": "m 2", "algorithm": "x", "metrics": {}, "meta": {}, "artifact_b64": ""},
            "version",
        ),
        (
            {"version": "m-3", "algorithm": "x", "metrics": {}, "meta": {}, "artifact_b64": "!!"},
            "artifact_b64",
        ),
        (
            {
                "version": "m-4",
                "algorithm": "x",
                "metrics": {"auc": "high"},
                "meta": {},
                "artifact_b64": "",
            },
            "metrics.auc",
        ),
    ]:
        response = client.post("/internal/models", json=body, headers=H)
        assert response.status_code == 422, response.text
        assert field in {e["field"] for e in response.json()["errors"]}
    assert client.post("/internal/models/nope/promote", headers=H).status_code == 404
    assert client.get("/internal/models", headers={}).status_code == 401


def test_database_allows_one_champion_only(engine: Engine, client: TestClient) -> None:
    upload(client, "m-1")
    upload(client, "m-2")
    client.post("/internal/models/m-1/promote", headers=H)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE model_version SET status = 'champion' WHERE version = 'm-2'"))


def test_decision_count(client: TestClient) -> None:
    counted = client.get("/internal/decisions/count", headers=H).json()
    assert counted == {"count": 0, "live": 0, "imported": 0, "latest_decided_at": None}
