"""One HTTP attempt: the address checked after resolving, bounded time, no redirects, 4 KB read.

The host is resolved here, each address it resolves to is checked (shared.ssrf), and the
request goes to the checked address itself (the URL's host stays in the Host header and the TLS
server name), so a DNS answer that changes between the check and the connect cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from shared.http_transport import PooledTransport
from shared.ssrf import IPAddress, UnsafeTarget, check_address

ERROR_MAX: Final = 200
EXCERPT_MAX_CHARS: Final = 1_024
USER_AGENT: Final = "finmatch-webhooks/1"
# An idle connection to a receiver is closed after this: below uvicorn's 5 s keep-alive, so a
# receiver rarely closes one just as a send starts on it.
KEEPALIVE_SECONDS: Final = 4.0


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    response_excerpt: str = ""
    retry_after: str | None = None
    # The attempt never left: its target was refused before connecting.
    refused: bool = False


def tls_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """httpx's default verification (certifi's public CAs, host names checked) plus the CAs in
    ``ca_bundle``, so that a receiver behind a private CA (or a test's) can be reached. The
    environment (SSL_CERT_FILE) never changes it: the client ignores it, as it does proxies."""
    context = httpx.create_ssl_context(trust_env=False)
    if ca_bundle is not None:
        context.load_verify_locations(cafile=ca_bundle)
    return context


def make_client(
    connect_timeout: float,
    timeout: float,
    ca_bundle: Path | None = None,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """The dispatcher's one client, over aiohttp's pool (shared.http_transport: httpcore's
    cost CPU per send in proportion to the connections it held). ``max_connections`` is the
    dispatcher's concurrency, so a send never waits in the pool for a connection."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        follow_redirects=False,
        trust_env=False,
        transport=PooledTransport(verify=tls_context(ca_bundle), trust_env=False, limits=limits),
    )


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to, in the resolver's order, without repeats."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # An IPv6 sockaddr may carry a scope ("fe80::1%eth0"); the check needs the address.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _short(text: str) -> str:
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


async def send(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    total_timeout: float = 10.0,
    max_bytes: int = 4_096,
) -> AttemptResult:
    """POST ``body`` to ``url``; never raises for what the network or the receiver does."""
    started = time.perf_counter()
    try:
        target = httpx.URL(url)
        host = target.host
        port = target.port or (443 if target.scheme == "https" else 80)
        if target.scheme not in ("http", "https") or not host:
            return AttemptResult(
                None, 0, error=f"refused: unsupported URL {url[:80]}", refused=True
            )
        async with asyncio.timeout(total_timeout):
            addresses = await resolve(host, port)
            for address in addresses:
                try:
                    check_address(address, allow_private=allow_private)
                except UnsafeTarget as exc:
                    return AttemptResult(
                        None,
                        _elapsed_ms(started),
                        error=_short(f"refused: {host} resolves to {exc}"),
                        refused=True,
                    )
            if not addresses:
                return AttemptResult(None, _elapsed_ms(started), error=f"no address for {host}")
            last_error: Exception | None = None
            for address in addresses:
                try:
                    return await _post(client, target, address, body, headers, max_bytes, started)
                except httpx.ConnectError as exc:  # the next address may answer
                    last_error = exc
            assert last_error is not None
            raise last_error
    except TimeoutError:
        return AttemptResult(None, _elapsed_ms(started), error=f"timeout after {total_timeout} s")
    except httpx.TimeoutException as exc:
        return AttemptResult(None, _elapsed_ms(started), error=_short(f"timeout: {exc!r}"))
    except (httpx.HTTPError, OSError) as exc:
        return AttemptResult(
            None, _elapsed_ms(started), error=_short(f"{type(exc).__name__}: {exc}")
        )


async def _post(
    client: httpx.AsyncClient,
    target: httpx.URL,
    address: IPAddress,
    body: bytes,
    headers: dict[str, str],
    max_bytes: int,
    started: float,
) -> AttemptResult:
    host_header = target.netloc.decode("ascii")
    pinned = target.copy_with(host=str(address))
    request_headers = {
        **headers,
        "host": host_header,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # Raw bytes only: a compressed answer could expand far beyond what we mean to read.
        "accept-encoding": "identity",
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request = client.build_request(
        "POST", pinned, content=body, headers=request_headers, extensions=extensions
    )
    response = await client.send(request, stream=True)
    try:
        read = bytearray()
        async for chunk in response.aiter_raw():
            read += chunk
            if len(read) >= max_bytes:
                break
    finally:
        await response.aclose()
    excerpt = bytes(read[:max_bytes]).decode("utf-8", errors="replace")[:EXCERPT_MAX_CHARS]
    error = None
    if response.is_redirect:
        location = response.headers.get("location", "")
        error = _short(f"redirect not followed (Location: {location})")
    return AttemptResult(
        response.status_code,
        _elapsed_ms(started),
        error=error,
        response_excerpt=excerpt,
        retry_after=response.headers.get("retry-after"),
    )
