"""A lean HTTP/1.1 GET client for the load generator: asyncio protocols and httptools' parser.

httpx costs ~1.3 ms of CPU per request, which on two cores is a sixth of the machine's time on
the uncached path and most of a core on the cached one: the bench then measures the client as
much as the servers. wrk would cost ~0.1 ms, but it is not always installed. This client keeps
one request in flight per keep-alive connection, writes a prebuilt request and parses the answer
with httptools (the parser uvicorn serves with), so it costs a fraction of httpx while still
reading every answer's bytes, which the bench checks.

Only what the bench sends: GET, no body, no redirects, no compression asked for. A connection the
server closes is dropped and the next request opens another.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httptools

Answer = tuple[int, bytes]
TIMEOUT_SECONDS = 30.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.chunks: list[bytes] = []
        self.reusable = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad answer: {exc}"))
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(ConnectionError("connection closed by the server"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if not self.parser.should_keep_alive():
            self.reusable = False
        body, self.chunks = b"".join(self.chunks), []
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))
        if not self.reusable:
            self._close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    async def send(self, request: bytes) -> Answer:
        assert self.transport is not None
        assert self.waiter is None
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.transport.write(request)
        deadline = loop.call_later(TIMEOUT_SECONDS, self._timed_out)
        try:
            return await self.waiter
        finally:
            deadline.cancel()

    def _timed_out(self) -> None:
        self._fail(TimeoutError(f"no answer in {TIMEOUT_SECONDS:g} s"))
        self._close()


class RawClient:
    """GETs over a pool of keep-alive connections, at most ``max_connections`` at once.

    A request takes an idle connection, or opens one while fewer than the limit are open, or
    waits for one to come back: like httpx's pool, so the open loop queues here only when the
    server is that far behind.
    """

    def __init__(self, base_url: str, headers: dict[str, str], max_connections: int) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"rawhttp speaks plain http to a host: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or 80
        self.prefix = url.path.rstrip("/")
        lines = [f"Host: {url.netloc}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.max_connections = max_connections
        self.idle: list[_Connection] = []
        self.open = 0
        self.returned = asyncio.Condition()

    async def _take(self) -> _Connection:
        while True:
            while self.idle:
                connection = self.idle.pop()
                if connection.reusable:
                    return connection
                self.open -= 1
            if self.open < self.max_connections:
                self.open += 1
                try:
                    _, protocol = await asyncio.get_running_loop().create_connection(
                        _Connection, self.host, self.port
                    )
                except BaseException:
                    self.open -= 1
                    raise
                return protocol
            async with self.returned:
                await self.returned.wait()

    async def _give_back(self, connection: _Connection) -> None:
        if connection.reusable:
            self.idle.append(connection)
        else:
            self.open -= 1
        async with self.returned:
            self.returned.notify()

    async def get(self, path: str) -> Answer:
        """The status and the whole body of GET ``path``; ConnectionError/OSError if it failed."""
        connection = await self._take()
        try:
            request = b"GET " + (self.prefix + path).encode("ascii") + b" HTTP/1.1\r\n"
            return await connection.send(request + self.head)
        except BaseException:
            connection._close()
            raise
        finally:
            await self._give_back(connection)

    async def aclose(self) -> None:
        for connection in self.idle:
            connection._close()
        self.idle.clear()
        self.open = 0

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
