"""The webhook bench's receiver: verifies every request, records its arrival, fails a fixed share.

Runs as its own process (``python -m bench.webhook_receiver --port P --secret S``) under uvicorn,
so that its work and the bench's producer never share a GIL and a receipt time is taken the
moment the request's body is in. Every request is verified with standardwebhooks (the
receivers' reference library, not the dispatcher's code). The first attempt of a deterministic
share of webhook-ids (by a hash of the id, so a run can be repeated) is answered 500, every
other request 204 (400 when it does not verify). ``GET /received`` answers all the records.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HOOK_PATH = "/hook"
FAILED = 500
DELIVERED = 204
UNVERIFIED = 400


def fails_first_attempt(webhook_id: str, share: float) -> bool:
    """Whether the first attempt of ``webhook_id`` is refused: the id's hash, read as a number
    in [0, 1), below ``share``. Deterministic, and independent of the order ids arrive in."""
    digest = hashlib.sha256(webhook_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass
class Log:
    """What arrived, one entry per request, as columns (10,000s of rows answer as one JSON)."""

    webhook_id: list[str] = field(default_factory=list)
    seq: list[int | None] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # time.time(), after the body
    status: list[int] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # requests so far per webhook-id

    def as_json(self) -> bytes:
        return orjson.dumps(
            {
                "webhook_id": self.webhook_id,
                "seq": self.seq,
                "received_at": self.received_at,
                "status": self.status,
                "verified": self.verified,
            }
        )


def _seq(body: bytes) -> int | None:
    """The bench's sequence number in the event's data (None: not a bench body)."""
    try:
        seq = orjson.loads(body)["data"]["seq"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return seq if isinstance(seq, int) else None


def create_app(secret: str, fail_share: float) -> Starlette:
    verifier = Webhook(secret)
    log = Log()

    async def hook(request: Request) -> Response:
        body = await request.body()
        received_at = time.time()
        headers = dict(request.headers)
        webhook_id = headers.get("webhook-id", "")
        try:
            verifier.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        nth = log.seen.get(webhook_id, 0) + 1
        log.seen[webhook_id] = nth
        if not verified:
            status = UNVERIFIED
        elif nth == 1 and fails_first_attempt(webhook_id, fail_share):
            status = FAILED
        else:
            status = DELIVERED
        log.webhook_id.append(webhook_id)
        log.seq.append(_seq(body))
        log.received_at.append(received_at)
        log.status.append(status)
        log.verified.append(verified)
        return Response(status_code=status)

    async def received(_request: Request) -> Response:
        return Response(log.as_json(), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return Response(b"ok")

    routes: list[Any] = [
        Route(HOOK_PATH, hook, methods=["POST"]),
        Route("/received", received, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_receiver", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True, help="the endpoint's whsec_ secret")
    parser.add_argument("--fail-share", type=float, default=0.2)
    args = parser.parse_args(argv)
    app = create_app(args.secret, args.fail_share)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
