"""The sender's send-time address check: every address a host resolves to must be public."""

from __future__ import annotations

import asyncio

import pytest

from services.registry.dispatcher.sender import AttemptResult, make_client, send


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9/hook",
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0:9/hook",
        "https://224.0.0.1/hook",
    ],
)
def test_a_non_public_address_is_refused_before_connecting(url: str) -> None:
    async def attempt() -> AttemptResult:
        async with make_client(3, 10) as client:
            return await send(client, url, b"{}", {}, allow_private=False, total_timeout=10)

    result = asyncio.run(attempt())
    assert result.refused
    assert result.status_code is None
    assert result.error is not None
    assert "is not a public address" in result.error


def test_an_unsupported_scheme_is_refused() -> None:
    async def attempt() -> AttemptResult:
        async with make_client(3, 10) as client:
            return await send(client, "ftp://example.com/x", b"{}", {}, allow_private=True)

    result = asyncio.run(attempt())
    assert result.refused
