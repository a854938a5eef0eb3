"""Request-scoped dependencies: the internal token, the database session, the acting principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry.config import RegistrySettings
from services.registry.db import write_session
from services.registry.idempotency import DeferredCommitSession, keyed_session
from services.registry.models import Principal
from shared.enums import PrincipalRole
from shared.error_codes import ErrorCode
from shared.errors import NotFound, ProblemError, Unauthorized
from shared.internal import require_internal_token

__all__ = ["require_internal_token"]


class Forbidden(ProblemError):
    status, code, title = 403, ErrorCode.FORBIDDEN, "Forbidden"


# The small dependencies are coroutines: FastAPI runs a plain ``def`` dependency in the thread
# pool, a hand-off between threads (and a wake-up of the event loop) for a field read.
async def get_settings(request: Request) -> RegistrySettings:
    settings: RegistrySettings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(
    request: Request, engine: Annotated[Engine, Depends(get_engine)]
) -> Iterator[Session]:
    """A session for the request; writers call ``session.commit()`` before they answer."""
    if request.method in READ_METHODS:
        session = Session(engine, expire_on_commit=False)
    elif keyed_session(request):
        session = write_session(engine, DeferredCommitSession)
        request.state.idempotent_session = session
    else:
        session = write_session(engine)
    with session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


def get_read_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A reader's session whatever the method (a lookup sent as POST takes no write lock)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
SettingsDep = Annotated[RegistrySettings, Depends(get_settings)]


PRINCIPALS_CACHED = 10_000


def _load_principal(engine: Engine, principal_id: int) -> Principal | None:
    # Its own short read: the request's session may be a writer that must not start early,
    # and the bulk import writes in sessions of its own.
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Principal, principal_id)


async def get_principal(
    request: Request,
    x_principal_id: Annotated[int | None, Header(ge=1, le=2**63 - 1)] = None,
) -> Principal:
    """The acting principal, from this process's memory after the first request.

    Principals are immutable (created, never edited or deleted: keys are what is revoked, at
    the gateway), so a principal read once stays right; ids are never reused.
    """
    if x_principal_id is None:
        raise Unauthorized("X-Principal-Id is required", code=ErrorCode.PRINCIPAL_REQUIRED)
    known: dict[int, Principal] = request.app.state.principals
    principal = known.get(x_principal_id)
    if principal is None:
        engine = request.app.state.engine
        principal = await run_in_threadpool(_load_principal, engine, x_principal_id)
        if principal is None:
            raise Unauthorized("unknown principal", code=ErrorCode.UNKNOWN_PRINCIPAL)
        if len(known) >= PRINCIPALS_CACHED:
            known.pop(next(iter(known)), None)  # the oldest: principals in use come back
        known[x_principal_id] = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(principal: Principal, *roles: PrincipalRole) -> None:
    """Functions a role may not use answer 404, like out-of-scope objects."""
    if principal.role not in {r.value for r in roles}:
        raise NotFound("no such resource")


async def request_id(
    x_request_id: Annotated[str | None, Header(max_length=64)] = None,
) -> str | None:
    return x_request_id


RequestIdDep = Annotated[str | None, Depends(request_id)]


# Ids are BIGINT: a bigger number is a client error (422), never a database overflow (500).
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
