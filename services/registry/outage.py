"""The database is unreachable: which errors say so, the 503 they become, one log line each way.

An unreachable database is not a bug in the request: it answers 503 ``database_unavailable``
with Retry-After, quickly (the engine's connect and pool timeouts bound the wait), and the
operator reads one warning when the outage starts and one line when it ends — not a
traceback per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shared.error_codes import ErrorCode
from shared.errors import ServiceUnavailable, problem_response

log = logging.getLogger("finmatch.registry.database")

# SQLSTATEs that mean "no database to talk to" rather than "this statement failed": class 08
# (connection exception), the server shutting down or starting up, and no connection slot.
_UNAVAILABLE_CLASSES: Final = ("08",)
_UNAVAILABLE_STATES: Final = frozenset({"57P01", "57P02", "57P03", "53300"})


class DatabaseUnavailable(ServiceUnavailable):
    code = ErrorCode.DATABASE_UNAVAILABLE
    title = "Database unavailable"


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (as opposed to a statement's own
    failure, such as a serialization failure or a cancelled query, which stay 500/409)."""
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free in time
        return True
    driver_error: BaseException | None = exc
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:  # the dialect recognised a disconnect
            return True
        driver_error = exc.orig
    if isinstance(driver_error, psycopg.InterfaceError):  # e.g. "the connection is closed"
        return True
    if isinstance(driver_error, psycopg.OperationalError):
        state = driver_error.sqlstate
        # No SQLSTATE: the failure was the connection's own (refused, timed out, reset).
        if state is None:
            return True
        return state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
    return False


def describe(exc: BaseException) -> str:
    """One line: the driver's first line of the error, without SQLAlchemy's footer."""
    original = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0] if text else ''}"


class OutageMonitor:
    """Remembers whether the database is out, to log its start and its end once each."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # failures are seen on the loop, connections in threads
        self._since: float | None = None
        self._refused = 0

    @property
    def out(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self._since is None
            if first:
                self._since = self._clock()
            self._refused += 1
        if first:
            log.warning(
                "database unavailable (%s); answering 503 database_unavailable until it is back",
                describe(exc),
            )

    def recovered(self) -> None:
        with self._lock:
            if self._since is None:
                return
            lasted, refused = self._clock() - self._since, self._refused
            self._since, self._refused = None, 0
        log.warning(
            "database reachable again after %.1f s; %d requests were refused meanwhile",
            lasted,
            refused,
        )

    def watch(self, engine: Engine) -> Callable[[], None]:
        """A new connection means the database is back; returns what stops watching."""

        def connected(*_args: object) -> None:
            if self._since is not None:
                self.recovered()

        event.listen(engine, "connect", connected)
        return lambda: event.remove(engine, "connect", connected)


def install_outage_handlers(app: FastAPI, monitor: OutageMonitor, retry_after: int) -> None:
    """Database errors that mean "unreachable" answer 503; any other goes on to the 500
    handler, as before."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_unavailable(exc):
            raise exc
        monitor.failed(exc)
        error = DatabaseUnavailable(
            f"the database is unavailable; retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        return problem_response(error.status, error.to_problem(request.url.path), error.headers)

    for kind in (
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        sa.exc.TimeoutError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    ):
        app.add_exception_handler(kind, unavailable)
