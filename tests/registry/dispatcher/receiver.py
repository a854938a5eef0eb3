"""A webhook receiver under uvicorn that verifies with standardwebhooks and records what it got."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from tests.polling import wait_until
from tests.registry.dispatcher.tls import ServerCertificate
from tests.services import _free_port

# What to answer the n-th request (1-based) carrying a webhook-id: None → 204.
Plan = Callable[[str, int], Response | None]


@dataclass
class Received:
    webhook_id: str
    verified: bool
    body: bytes
    headers: dict[str, str]
    answered: int
    # The receiver's own address the request came in on (which address the sender dialled).
    server: tuple[str, int] | None = None


@dataclass
class Receiver:
    secrets: list[str]
    plan: Plan | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""
    # Seconds to hold each answer (after recording the request): sends stay in flight.
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verified(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            return True
        return False

    def seen(self, webhook_id: str) -> int:
        with self.lock:
            return sum(1 for r in self.received if r.webhook_id == webhook_id)

    def delivered_ids(self) -> list[str]:
        """webhook-ids answered with a 2xx, in arrival order (repeats kept)."""
        with self.lock:
            return [r.webhook_id for r in self.received if 200 <= r.answered < 300]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return
        request = Request(scope, receive)
        body = await request.body()
        headers = dict(request.headers)
        webhook_id = headers.get("webhook-id", "")
        verified = self.verified(body, headers)
        with self.lock:
            nth = 1 + sum(1 for r in self.received if r.webhook_id == webhook_id)
        response = self.plan(webhook_id, nth) if self.plan else None
        if response is None:
            response = Response(status_code=204 if verified else 400)
        with self.lock:
            self.received.append(
                Received(
                    webhook_id, verified, body, headers, response.status_code, scope.get("server")
                )
            )
        if self.delay:
            await asyncio.sleep(self.delay)
        await response(scope, receive, send)


@contextmanager
def serve(receiver: Receiver, tls: ServerCertificate | None = None) -> Iterator[Receiver]:
    """Run ``receiver`` under uvicorn on a free loopback port, in a thread of this process.

    With ``tls``, it answers https only and its URL names ``localhost`` (the name its
    certificate is for), not the address it listens on."""
    port = _free_port()
    config = uvicorn.Config(
        receiver,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ssl_certfile=tls.cert_file if tls else None,
        ssl_keyfile=tls.key_file if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    receiver.url = f"https://localhost:{port}/hook" if tls else f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def huge_body(counter: dict[str, int], chunks: int = 16_000, size: int = 65_536) -> Response:
    """A 1 GB answer, generated as it is sent; ``counter['chunks']`` says how far it got."""

    async def generate() -> AsyncIterator[bytes]:
        for _ in range(chunks):
            counter["chunks"] = counter.get("chunks", 0) + 1
            yield b"x" * size
            await asyncio.sleep(0)

    return StreamingResponse(generate(), status_code=200)


def answer(status: int, **headers: Any) -> Response:
    return Response(
        status_code=status, headers={k.replace("_", "-"): str(v) for k, v in headers.items()}
    )
