"""The bench's lean HTTP client (bench.api.rawhttp) reads what the server sent, reuses
keep-alive connections, opens new ones when the server closes them, holds to its connection
limit, and reports a connection that dies mid-answer as a failure, not as an answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from bench.api.rawhttp import RawClient

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> tuple[web.AppRunner, str, list[Any]]:
    """A server on a free port; the third value lists each connection's peer port per request."""
    peers: list[Any] = []

    async def recording(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername")[1] if request.transport else None)
        return await handler(request)

    app = web.Application()
    app.router.add_get("/{tail:.*}", recording)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}", peers


def run(handler: Handler, body: Callable[[RawClient], Awaitable[Any]], limit: int = 4) -> Any:
    async def main() -> Any:
        runner, url, peers = await serve(handler)
        try:
            async with RawClient(url, {"X-Api-Key": "k1"}, limit) as client:
                return await body(client), peers
        finally:
            await runner.cleanup()

    return asyncio.run(main())


async def echo(request: web.Request) -> web.Response:
    text = f"{request.method} {request.path_qs} {request.headers.get('X-Api-Key')}"
    return web.Response(text=text, status=404 if "missing" in request.path else 200)


def test_answers_are_read_whole_with_their_status_and_the_headers_sent() -> None:
    async def body(client: RawClient) -> list[tuple[int, bytes]]:
        return [await client.get(p) for p in ("/v1/a?x=1", "/missing", "/v1/b")]

    answers, peers = run(echo, body)
    assert answers == [
        (200, b"GET /v1/a?x=1 k1"),
        (404, b"GET /missing k1"),
        (200, b"GET /v1/b k1"),
    ]
    assert len(set(peers)) == 1  # one keep-alive connection for the three


def test_a_chunked_answer_of_many_parts_arrives_whole() -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(50):
            await response.write(b"%03d," % i * 100)
        await response.write_eof()
        return response

    async def body(client: RawClient) -> tuple[int, bytes]:
        return await client.get("/")

    (status, data), _ = run(chunked, body)
    assert status == 200
    assert data == b"".join(b"%03d," % i * 100 for i in range(50))


def test_a_connection_the_server_closes_is_replaced() -> None:
    async def closing(request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    async def body(client: RawClient) -> list[tuple[int, bytes]]:
        return [await client.get("/") for _ in range(3)]

    answers, peers = run(closing, body)
    assert answers == [(200, b"bye")] * 3
    assert len(set(peers)) == 3  # a new connection for each


def test_it_never_opens_more_connections_than_its_limit() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.02)
        return web.Response(text="ok")

    async def body(client: RawClient) -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(*(client.get("/") for _ in range(40))))

    answers, peers = run(slow, body, limit=3)
    assert answers == [(200, b"ok")] * 40
    assert len(set(peers)) == 3


def test_a_connection_dropped_mid_answer_is_a_failure() -> None:
    async def dropping(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return response

    async def body(client: RawClient) -> str:
        with pytest.raises(ConnectionError):
            await client.get("/")
        return "raised"

    outcome, _ = run(dropping, body)
    assert outcome == "raised"


def test_only_plain_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="plain http"):
        RawClient("https://example.test", {}, 1)
