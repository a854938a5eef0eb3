"""A JSON body past the limit is refused with 413 before it is read whole; bulk streams on."""

from __future__ import annotations

import json

import orjson
from sqlalchemy.engine import Engine

from tests.gateway.conftest import running_stack
from tests.registry import data

LIMIT = 4096


def _padded_firm(size: int) -> bytes:
    """A valid firm whose JSON is ``size`` bytes long (white space after the object)."""
    raw = orjson.dumps(data.firm())
    return raw + b" " * (size - len(raw))


def test_a_body_past_the_limit_is_413_and_writes_nothing(engine: Engine) -> None:
    with running_stack(engine, max_body_bytes=LIMIT) as stack:
        portal = stack.principal("portal")
        headers = {"Content-Type": "application/json"}
        refused = portal.post("/v1/firms", content=_padded_firm(LIMIT + 1), headers=headers)
        assert refused.status_code == 413, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "payload_too_large"
        assert portal.get("/v1/firms").json()["data"] == []
        # Without Content-Length (chunked), the limit is counted as the body streams in.
        chunks = iter([_padded_firm(LIMIT + 1)[:2000], _padded_firm(LIMIT + 1)[2000:]])
        streamed = portal.post("/v1/firms", content=chunks, headers=headers)
        assert streamed.status_code == 413
        assert portal.get("/v1/firms").json()["data"] == []


def test_a_body_at_the_limit_is_taken(engine: Engine) -> None:
    with running_stack(engine, max_body_bytes=LIMIT) as stack:
        portal = stack.principal("portal")
        at_limit = _padded_firm(LIMIT)
        headers = {"Content-Type": "application/json"}
        taken = portal.post("/v1/firms", content=at_limit, headers=headers)
        assert taken.status_code == 201, taken.text


def test_a_bulk_import_is_not_held_to_the_json_limit(engine: Engine) -> None:
    lines = b"".join(json.dumps(data.firm(i)).encode() + b"\n" for i in range(1, 40))
    assert len(lines) > 2 * LIMIT  # well past the JSON limit, well within the bulk one
    with running_stack(engine, max_body_bytes=LIMIT) as stack:
        portal = stack.principal("portal")
        answer = portal.post(
            "/v1/firms/bulk",
            params={"import_id": "body-limit"},
            content=lines,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert answer.status_code == 200, answer.text
        assert len(portal.get("/v1/firms", params={"limit": 100}).json()["data"]) == 39
