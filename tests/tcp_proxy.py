"""A TCP proxy that tests put in front of a real server (Redis, PostgreSQL) to cut, hang or
restore the connection without touching the server, which other tests and runs share."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")


class TcpProxy:
    """A TCP hop in front of ``target``. ``stop`` closes the port and every open connection
    (a crashed server); ``start`` again listens on the same port (the server is back). With
    ``hang`` set, new connections are accepted and never answered, and after ``freeze``, the
    connections open at that moment stop answering (a stuck server, or a host that vanished
    without closing them). Runs on the event loop that calls ``start``."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.port = 0
        self.hang = False
        self.accepted = 0
        self._frozen: set[asyncio.StreamReader] = set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._clients: set[asyncio.StreamReader] = set()

    @classmethod
    def to_url(cls, url: str, default_port: int) -> TcpProxy:
        target = urlsplit(url)
        return cls(target.hostname or "127.0.0.1", target.port or default_port)

    def proxied(self, url: str) -> str:
        """``url`` with its host and port replaced by this proxy's (user, path and query kept)."""
        parts = urlsplit(url)
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{self.port}"))

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        # The same port after a stop (SO_REUSEADDR is asyncio's default on POSIX): clients
        # configured with the proxy's address find the "server" back where it was.
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, *, reset: bool = False) -> None:
        """Close the port and every connection: with FIN, as the kernel does for a process that
        died, or with ``reset``, RST, as a host that lost the connections' state answers."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            if reset:
                writer.transport.abort()
            else:
                writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def freeze(self) -> None:
        self._frozen.update(self._clients)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        own = [writer]
        self._writers.add(writer)
        self._clients.add(reader)
        try:
            if self.hang:
                await reader.read()  # swallow the requests, answer nothing
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
            own.append(upstream_writer)
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(reader, upstream_writer, reader),
                self._pipe(upstream_reader, writer, reader),
            )
        except OSError:
            pass
        finally:
            for each in own:
                each.close()
                self._writers.discard(each)
            self._tasks.discard(task)
            self._clients.discard(reader)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: asyncio.StreamReader,
    ) -> None:
        while data := await reader.read(65_536):
            if client not in self._frozen:
                writer.write(data)
                await writer.drain()
        writer.close()


class ThreadedProxy:
    """A ``TcpProxy`` on an event loop of its own thread, driven by plain calls: for tests
    whose clients block (a database driver in a thread pool, services run as processes)."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._thread.start()

    @classmethod
    def to_url(cls, url: str, default_port: int) -> ThreadedProxy:
        return cls(TcpProxy.to_url(url, default_port))

    def proxied(self, url: str) -> str:
        return self.proxy.proxied(url)

    def start(self) -> None:
        self._run(self.proxy.start())

    def stop(self, *, reset: bool = False) -> None:
        self._run(self.proxy.stop(reset=reset))

    def freeze(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.freeze)

    def close(self) -> None:
        if self.proxy.listening:
            self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ThreadedProxy:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)
