"""https receivers: the sender dials the address it checked and verifies the URL's host name.

The receiver's certificate names ``localhost`` only (no IP address), and the sender connects to
127.0.0.1: a send succeeds only if the TLS server name (SNI, and the name checked against the
certificate) is the URL's host while the socket goes to the pinned address.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from services.registry.dispatcher.sender import AttemptResult, make_client, send
from services.registry.dispatcher.signing import signed_headers
from shared.schemas.webhooks import webhook_id
from tests.registry.dispatcher.data import (
    add_deliveries,
    add_endpoint,
    attempts,
    delivery,
    new_secret,
    run_until,
    settings_for,
)
from tests.registry.dispatcher.receiver import Receiver, serve
from tests.registry.dispatcher.tls import Authority, issue, make_authority


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return make_authority(tmp_path)


def signed_send(url: str, secret: str, ca_bundle: Path | None) -> AttemptResult:
    body = b'{"type":"webhook.ping","timestamp":"2027-01-01T00:00:00Z","data":{}}'
    headers = signed_headers("msg_1", datetime.now(UTC), body, [secret])

    async def attempt() -> AttemptResult:
        async with make_client(3, 10, ca_bundle) as client:
            return await send(client, url, body, headers, allow_private=True, total_timeout=10)

    return asyncio.run(attempt())


def test_https_goes_to_the_pinned_address_under_the_urls_name(
    authority: Authority, tmp_path: Path
) -> None:
    certificate = issue(authority, "localhost", tmp_path)
    secret = new_secret()
    with serve(Receiver(secrets=[secret]), tls=certificate) as receiver:
        port = httpx.URL(receiver.url).port
        assert receiver.url == f"https://localhost:{port}/hook"
        result = signed_send(receiver.url, secret, authority.pem_file)
    assert (result.status_code, result.error) == (204, None)
    [got] = receiver.received
    assert got.verified
    assert got.server == ("127.0.0.1", port)
    assert got.headers["host"] == f"localhost:{port}"


def test_a_certificate_for_another_name_is_an_attempt_error(
    authority: Authority, tmp_path: Path
) -> None:
    certificate = issue(authority, "receiver.example", tmp_path)
    secret = new_secret()
    with serve(Receiver(secrets=[secret]), tls=certificate) as receiver:
        result = signed_send(receiver.url, secret, authority.pem_file)
    assert result.status_code is None
    assert not result.refused
    assert result.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert "localhost" in result.error  # the name it was checked against
    assert receiver.received == []


def test_a_ca_outside_the_bundle_is_not_trusted(authority: Authority, tmp_path: Path) -> None:
    certificate = issue(authority, "localhost", tmp_path)
    secret = new_secret()
    with serve(Receiver(secrets=[secret]), tls=certificate) as receiver:
        result = signed_send(receiver.url, secret, ca_bundle=None)
    assert result.status_code is None
    assert result.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert receiver.received == []


def test_dispatcher_records_a_certificate_error_as_the_attempts_error(
    engine: Engine, authority: Authority, tmp_path: Path
) -> None:
    certificate = issue(authority, "receiver.example", tmp_path)
    with serve(Receiver(secrets=[]), tls=certificate) as receiver:
        endpoint_id, _secret = add_endpoint(engine, receiver.url)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        settings = settings_for(engine, webhook_ca_bundle=authority.pem_file)
        run_until(engine, settings, lambda: attempts(engine, delivery_id))
    first = attempts(engine, delivery_id)[0]
    assert first.status_code is None
    assert "CERTIFICATE_VERIFY_FAILED" in first.error
    assert receiver.received == []
    # A certificate error may be fixed by the receiver: retried like a network error.
    assert delivery(engine, delivery_id).status in ("pending", "dead")


def test_dispatcher_delivers_over_https_with_the_bundle(
    engine: Engine, authority: Authority, tmp_path: Path
) -> None:
    certificate = issue(authority, "localhost", tmp_path)
    with serve(Receiver(secrets=[]), tls=certificate) as receiver:
        endpoint_id, secret = add_endpoint(engine, receiver.url)
        receiver.secrets.append(secret)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        settings = settings_for(engine, webhook_ca_bundle=authority.pem_file)
        run_until(engine, settings, lambda: delivery(engine, delivery_id).status != "pending")
    assert delivery(engine, delivery_id).status == "delivered"
    [got] = receiver.received
    assert got.verified
    assert got.webhook_id == webhook_id(delivery(engine, delivery_id).event_id, endpoint_id)
    [attempt] = attempts(engine, delivery_id)
    assert (attempt.status_code, attempt.error) == (204, None)


def test_a_connection_verified_for_one_name_is_not_reused_for_another_at_that_address(
    authority: Authority, tmp_path: Path
) -> None:
    """Two URLs that resolve to one address: the connection kept alive after a send to the
    name the certificate is for is not reused for a name it is not for (the pool is keyed by
    the TLS server name as well as the address), so that send fails verification."""
    certificate = issue(authority, "localhost", tmp_path)
    secret = new_secret()
    body = b'{"type":"webhook.ping","timestamp":"2027-01-01T00:00:00Z","data":{}}'
    headers = signed_headers("msg_1", datetime.now(UTC), body, [secret])
    with serve(Receiver(secrets=[secret]), tls=certificate) as receiver:
        by_address = f"https://127.0.0.1:{httpx.URL(receiver.url).port}/hook"

        async def both() -> list[AttemptResult]:
            async with make_client(3, 10, authority.pem_file) as client:
                return [
                    await send(client, url, body, headers, allow_private=True)
                    for url in (receiver.url, by_address)
                ]

        by_name, by_ip = asyncio.run(both())
    assert (by_name.status_code, by_name.error) == (204, None)
    assert by_ip.status_code is None
    assert by_ip.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in by_ip.error
    assert len(receiver.received) == 1
