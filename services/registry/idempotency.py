"""Idempotency-Key enforced by the system of record: a keyed write and its answer commit together.

The gateway forwards a keyed public POST's key and fingerprint (shared/internal.py) with each
write it makes here. The route class below defers the handler's commit, adds a record of the
answer, and commits both in one transaction under a unique constraint on (principal, key,
operation). So whichever gateway replica sends the key, and whatever its Redis remembers, the
write happens once: a repeat is answered from the record (``Idempotent-Replayed: true``), the
same key for another request is a 422, and of two concurrent writes with one key the second
fails on the constraint, is rolled back, and answers with the first one's record.

Only successful answers are recorded: a refused write changed nothing, so a retry may run.
Records are kept ``RECORD_TTL``; past it, the key counts as new (as at the gateway). An answer
marked ``Cache-Control: no-store`` (a new API key, shown once) is recorded without its body, so
no secret rests in the database or its backups: a repeat is refused with 409.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import sqlalchemy as sa
from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.registry.models import IdempotencyRecord
from services.registry.models.columns import table_of, utcnow
from shared.error_codes import ErrorCode
from shared.errors import Conflict, Unprocessable
from shared.internal import (
    IDEMPOTENCY_FINGERPRINT_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENT_REPLAYED_HEADER,
)
from shared.strict_json import StrictJSONRoute

RECORD_TTL: Final = timedelta(hours=24)
MAX_KEY_LENGTH: Final = 255
PURGE_INTERVAL_SECONDS: Final = 60.0
# Headers of an answer that are part of it (the rest are per response).
_KEPT_HEADERS: Final = ("content-type", "etag", "location")
_READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one keyed write's record lives, and the request it was made for."""

    principal_id: int
    key: str
    operation: str
    fingerprint: str


class DeferredCommitSession(Session):
    """A keyed write's session: ``commit`` only flushes (constraint errors still surface where
    the handler expects them); the route commits the write and its record together."""

    def commit(self) -> None:
        self.flush()

    def commit_with(self, record: IdempotencyRecord | None) -> None:
        if record is not None:
            self.add(record)
        super().commit()


def slot_of(request: Request) -> Slot | None:
    """The keyed write this request is, or None (no key, or a read)."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None or request.method in _READ_METHODS:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Unprocessable(
            f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable ASCII characters",
            field=IDEMPOTENCY_KEY_HEADER,
        )
    principal = request.headers.get("x-principal-id", "")
    if not principal.isdigit() or not 1 <= int(principal) < 2**63:
        # A key is a principal's; a keyed write without one is refused (before any write).
        raise Unprocessable("a keyed write needs X-Principal-Id", field="X-Principal-Id")
    fingerprint = request.headers.get(IDEMPOTENCY_FINGERPRINT_HEADER, "")
    if len(fingerprint) > 64 or not fingerprint.isascii():
        raise Unprocessable(
            "the fingerprint is at most 64 ASCII characters", field=IDEMPOTENCY_FINGERPRINT_HEADER
        )
    operation = f"{request.method} {request.url.path}"[:512]
    return Slot(int(principal), key, operation, fingerprint)


def _find(engine: Engine, slot: Slot) -> IdempotencyRecord | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(
            select(IdempotencyRecord).where(
                IdempotencyRecord.principal_id == slot.principal_id,
                IdempotencyRecord.idempotency_key == slot.key,
                IdempotencyRecord.operation == slot.operation,
                IdempotencyRecord.created_at > utcnow() - RECORD_TTL,
            )
        ).first()


class _Purge:
    """Expired records go at most once a minute per process, inside a write's transaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                return False
            self._next = now + PURGE_INTERVAL_SECONDS
            return True


_purge = _Purge()


def _commit_with_record(session: DeferredCommitSession, slot: Slot, response: Response) -> None:
    records = table_of(IdempotencyRecord)
    cutoff = utcnow() - RECORD_TTL
    expired = records.c.created_at <= cutoff
    if not _purge.due():  # else every expired record goes, this slot's among them
        expired = sa.and_(
            expired,
            records.c.principal_id == slot.principal_id,
            records.c.idempotency_key == slot.key,
            records.c.operation == slot.operation,
        )
    session.execute(sa.delete(records).where(expired))
    headers = {k: v for k in _KEPT_HEADERS if (v := response.headers.get(k)) is not None}
    secret = _is_secret(response.headers.get("cache-control"))
    if secret:
        headers = {"cache-control": "no-store"}
    session.commit_with(
        IdempotencyRecord(
            principal_id=slot.principal_id,
            idempotency_key=slot.key,
            operation=slot.operation,
            fingerprint=slot.fingerprint,
            status=response.status_code,
            headers=headers,
            body=b"" if secret else bytes(response.body),
        )
    )


def _is_secret(cache_control: str | None) -> bool:
    return cache_control is not None and "no-store" in cache_control.lower()


def _replay(record: IdempotencyRecord, slot: Slot) -> Response:
    if record.fingerprint != slot.fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was used for a different request",
            code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
            field=IDEMPOTENCY_KEY_HEADER,
        )
    if _is_secret(record.headers.get("cache-control")):
        raise Conflict(
            "this Idempotency-Key created a secret that was shown once and is not kept; "
            "the write is done",
            code=ErrorCode.IDEMPOTENCY_SECRET_NOT_REPLAYED,
            field=IDEMPOTENCY_KEY_HEADER,
        )
    return Response(
        record.body,
        status_code=record.status,
        headers=dict(record.headers) | {IDEMPOTENT_REPLAYED_HEADER: "true"},
    )


def keyed_session(request: Request) -> bool:
    """Whether this request's write session must defer its commit (see the module doc)."""
    return getattr(request.state, "idempotency_slot", None) is not None


class IdempotentWriteRoute(StrictJSONRoute):
    """A route class: keyed writes commit with their record and are answered once (and, as
    every route with a JSON body, refuse a key repeated in an object)."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def keyed_handler(request: Request) -> Response:
            slot = slot_of(request)
            if slot is None:
                return await handler(request)
            engine: Engine = request.app.state.engine
            held = await run_in_threadpool(_find, engine, slot)
            if held is not None:
                return _replay(held, slot)
            request.state.idempotency_slot = slot
            try:
                response = await handler(request)
            except Exception:
                # Perhaps a concurrent request with the key wrote first (its write made ours
                # fail): if so, its answer is ours.
                await _roll_back(request)
                held = await run_in_threadpool(_find, engine, slot)
                if held is not None:
                    return _replay(held, slot)
                raise
            session: DeferredCommitSession | None = getattr(
                request.state, "idempotent_session", None
            )
            if session is None:  # the route writes in sessions of its own (bulk import)
                return response
            if not 200 <= response.status_code < 300 or not hasattr(response, "body"):
                await run_in_threadpool(session.commit_with, None)
                return response
            try:
                await run_in_threadpool(_commit_with_record, session, slot, response)
            except IntegrityError:
                await _roll_back(request)
                held = await run_in_threadpool(_find, engine, slot)
                if held is None:
                    raise
                return _replay(held, slot)
            return response

        return keyed_handler


async def _roll_back(request: Request) -> None:
    session: Session | None = getattr(request.state, "idempotent_session", None)
    if session is not None:
        await run_in_threadpool(session.rollback)
