"""Proactive matching's runner: scans products listed or changed, for match.new_product events.

One scan at a time per process, leased like a delivery (SKIP LOCKED on PostgreSQL), so two
dispatchers share the work and neither waits. A scan goes page by page through the firms that
consented to matching and stated a need: the page goes to matching (``/internal/newly-qualified``),
and the events of the firms it names are written with the new cursor in one transaction, only if
the cursor is still where the page started (a process whose lease ran out writes nothing). While
matching is unavailable the scan waits with a growing backoff and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry import proactive
from services.registry.config import RegistrySettings
from services.registry.db import is_sqlite, write_session
from services.registry.dispatcher.metrics import NEW_PRODUCT_EVENTS, SCAN_PAGES, SCANS
from services.registry.models import MatchScan
from services.registry.models.columns import table_of
from shared.schemas.matching import NewlyQualifiedResponse

logger = logging.getLogger("finmatch.dispatcher")

SCAN = table_of(MatchScan)
BACKOFF_FIRST_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0


class MatchingUnavailable(Exception):
    """Matching did not answer a page usably; the scan is tried again later."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def claim(engine: Engine, now: datetime, lease_seconds: float) -> int | None:
    """Lease the oldest due pending scan to this process; its id, or None."""
    due = (
        sa.select(SCAN.c.id)
        .where(
            SCAN.c.status == proactive.PENDING,
            SCAN.c.next_attempt_at <= now,
            sa.or_(SCAN.c.lease_until.is_(None), SCAN.c.lease_until < now),
        )
        .order_by(SCAN.c.next_attempt_at, SCAN.c.id)
        .limit(1)
    )
    if not is_sqlite(engine):
        due = due.with_for_update(skip_locked=True)
    with write_session(engine) as session, session.begin():
        claimed: int | None = session.execute(
            sa.update(SCAN)
            .where(SCAN.c.id.in_(due.scalar_subquery()))
            .values(lease_until=now + timedelta(seconds=lease_seconds))
            .returning(SCAN.c.id)
        ).scalar()
    return claimed


def backoff_seconds(attempts: int) -> float:
    """The wait after the ``attempts``-th failure in a row: 5 s doubling up to 10 minutes."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2.0 ** max(0, attempts - 1))


class Scanner:
    def __init__(
        self,
        engine: Engine,
        settings: RegistrySettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.client = client or httpx.AsyncClient(
            base_url=settings.matching_url,
            timeout=settings.proactive_timeout_seconds,
            trust_env=False,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Scan until ``stop`` is set (the page in flight is finished or abandoned whole)."""
        try:
            while not stop.is_set():
                try:
                    worked = await self.run_once()
                except Exception:
                    logger.exception("proactive matching: could not run a scan")
                    worked = False
                if not worked:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            stop.wait(), timeout=self.settings.dispatcher_poll_seconds
                        )
        finally:
            await self.client.aclose()

    async def run_once(self) -> bool:
        """Claim one due scan and run it to its end (or to a failure); whether one was due."""
        lease = self.settings.dispatcher_lease_seconds
        scan_id = await asyncio.to_thread(claim, self.engine, self.clock(), lease)
        if scan_id is None:
            return False
        while True:
            try:
                more = await self._page(scan_id)
            except MatchingUnavailable as exc:
                SCAN_PAGES.labels("error").inc()
                await asyncio.to_thread(self._postpone, scan_id, str(exc))
                return True
            if not more:
                return True
            await asyncio.to_thread(self._extend, scan_id, lease)

    async def _page(self, scan_id: int) -> bool:
        """One page of one scan; whether the scan goes on."""
        page_size = self.settings.proactive_page_firms
        with Session(self.engine) as session:
            scan = session.get(MatchScan, scan_id)
            if scan is None or scan.status != proactive.PENDING:
                return False
            cursor = scan.cursor_firm_id
            firms = proactive.firms_page(session, cursor, page_size)
            before, after = scan.before, scan.after
        if not firms:
            return await asyncio.to_thread(self._record, scan_id, cursor, cursor, None)
        body: dict[str, Any] = {
            "before": before,
            "after": after,
            "firms": [
                {"id": firm_id, "features": values, "verified": verified}
                for firm_id, values, verified in firms
            ],
        }
        answer = await self._ask(body)
        SCAN_PAGES.labels("ok").inc()
        last = firms[-1][0]
        if len(firms) < page_size:
            return await asyncio.to_thread(self._record, scan_id, cursor, last, answer, True)
        return await asyncio.to_thread(self._record, scan_id, cursor, last, answer)

    async def _ask(self, body: dict[str, Any]) -> NewlyQualifiedResponse:
        try:
            response = await self.client.post(
                "/internal/newly-qualified",
                content=orjson.dumps(body),
                headers={**_JSON, "X-Internal-Token": self.settings.internal_token},
            )
        except httpx.HTTPError as exc:
            raise MatchingUnavailable(f"matching: {type(exc).__name__}: {exc}"[:200]) from exc
        if response.status_code != 200:
            raise MatchingUnavailable(
                f"matching answered {response.status_code}: {response.text[:150]}"
            )
        try:
            return NewlyQualifiedResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise MatchingUnavailable(f"matching's answer is not understood: {exc}"[:200]) from exc

    def _record(
        self,
        scan_id: int,
        cursor: int,
        last: int,
        answer: NewlyQualifiedResponse | None,
        finished: bool = False,
    ) -> bool:
        """Write one page's events and move the cursor, if the cursor is still ``cursor``."""
        finished = finished or answer is None
        with write_session(self.engine) as session, session.begin():
            scan = session.get(MatchScan, scan_id, with_for_update=True)
            if scan is None or scan.status != proactive.PENDING:
                return False
            if scan.cursor_firm_id != cursor:
                logger.warning("proactive matching: scan %s moved on elsewhere", scan_id)
                return False
            found = [] if answer is None else answer.firms
            version = "" if answer is None else answer.model_version
            written = proactive.record_page(
                session, scan, last, found, version, finished=finished, now=self.clock()
            )
            status = scan.status
        NEW_PRODUCT_EVENTS.inc(written)
        if status != proactive.PENDING:
            SCANS.labels(status).inc()
            logger.info(
                "proactive matching: scan %s of product %s %s", scan_id, scan.product_id, status
            )
            return False
        return True

    def _postpone(self, scan_id: int, error: str) -> None:
        with write_session(self.engine) as session, session.begin():
            scan = session.get(MatchScan, scan_id, with_for_update=True)
            if scan is None or scan.status != proactive.PENDING:
                return
            scan.attempts += 1
            wait = backoff_seconds(scan.attempts)
            scan.next_attempt_at = self.clock() + timedelta(seconds=wait)
            scan.lease_until = None
            scan.last_error = error[:200]
            session.add(scan)
        logger.warning("proactive matching: scan %s waits %.0f s (%s)", scan_id, wait, error[:200])

    def _extend(self, scan_id: int, lease_seconds: float) -> None:
        with write_session(self.engine) as session, session.begin():
            session.execute(
                sa.update(SCAN)
                .where(SCAN.c.id == scan_id)
                .values(lease_until=self.clock() + timedelta(seconds=lease_seconds))
            )


_JSON = {"content-type": "application/json"}
