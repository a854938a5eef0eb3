"""The registered firms, read once from the registry's firm feed and then kept in step with it.

The first policy question (or the warm-up at start) reads every firm, a page of
FIRM_FEED_PAGE_ROWS at a time. Every later question first reads what was written since the
last read and applies it in place, so each answer counts every write acknowledged before the
question was asked (read your writes), at the price of one small indexed read.

Why "since" is safe: a firm's ``updated_at`` (and an erasure's audit time) is stamped inside
its transaction, before it commits. A write the last read missed had not committed when that
read began (at its ``read_at``), so it was stamped after ``read_at`` less the time its
transaction took (plus any clock skew between registry replicas). The next read asks for
everything stamped from ``read_at`` less ``overlap`` seconds, which covers it as long as no
firm write transaction lasts longer than ``overlap``. Rows read twice are applied twice, which
changes nothing (each carries the firm's whole current state).

When the registry cannot be reached, the firms as last read answer (logged); with none read
yet, the question fails with the registry's 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta

from fastapi.concurrency import run_in_threadpool

from services.matching.firm_columns import FirmColumns, RegisterEntries
from services.matching.registry_client import RegistryClient
from shared.errors import ServiceUnavailable
from shared.schemas.internal import FirmFeedPage

log = logging.getLogger("finmatch.matching.firms")


class FirmFeed:
    """One FirmColumns for the whole city, and when it was last brought up to date."""

    def __init__(self, overlap_seconds: float) -> None:
        self.overlap = timedelta(seconds=overlap_seconds)
        self.columns: FirmColumns | None = None
        self.read_at: datetime | None = None  # the registry's clock at the last read
        self.synced_monotonic: float | None = None
        # One reader or writer at a time: questions are answered from columns a catch-up
        # writes in place, so a question holds the lock from its catch-up to its answer.
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def current(self, registry: RegistryClient, as_of: date) -> AsyncIterator[FirmColumns]:
        """The firms with every write so far applied and their ages on ``as_of``; held for
        the caller's answer (the next question's catch-up waits)."""
        async with self._lock:
            try:
                await self._refresh(registry)
            except ServiceUnavailable:
                if self.columns is None:
                    raise
                log.warning(
                    "registry unreachable: answering from the firms as read %.0f s ago",
                    time.monotonic() - (self.synced_monotonic or 0.0),
                )
            assert self.columns is not None
            if self.columns.as_of != as_of:
                await run_in_threadpool(self.columns.date_to, as_of)
            yield self.columns

    async def warm(self, registry: RegistryClient) -> None:
        """Read every firm ahead of the first question (at start; errors are logged)."""
        try:
            async with self._lock:
                await self._refresh(registry)
        except Exception:  # the first question will try again and say why
            log.exception("firm feed warm-up failed")

    async def _refresh(self, registry: RegistryClient) -> None:
        if self.columns is None or self.read_at is None:
            columns, read_at = await self._read_all(registry)
            self.columns, self.read_at = columns, read_at
        else:
            self.read_at = await self._catch_up(registry, self.columns, self.read_at)
        self.synced_monotonic = time.monotonic()

    async def _read_all(self, registry: RegistryClient) -> tuple[FirmColumns, datetime]:
        columns = FirmColumns.empty()
        read_at: datetime | None = None
        after_id: int | None = 0
        while after_id is not None:
            page = await _page(registry, None, after_id)
            read_at = read_at or page.read_at  # the first page's: writes after it come next
            changed = FirmColumns.from_feed(page.columns)
            await run_in_threadpool(columns.apply, changed)
            _apply_registers(columns, page, changed, after_id)
            after_id = page.next_after_id
        assert read_at is not None
        log.info("firm feed: %d firms read, %d bytes of columns", columns.m, columns.nbytes)
        return columns, read_at

    async def _catch_up(
        self, registry: RegistryClient, columns: FirmColumns, read_at: datetime
    ) -> datetime:
        since = read_at - self.overlap
        after_id: int | None = 0
        next_read_at: datetime | None = None
        while after_id is not None:
            page = await _page(registry, since, after_id)
            next_read_at = next_read_at or page.read_at
            changed = FirmColumns.from_feed(page.columns)
            if changed.m > 1_000:
                await run_in_threadpool(columns.apply, changed, page.erased)
            else:  # the usual case: a few firms, cheaper than a thread hop
                columns.apply(changed, page.erased)
            _apply_registers(columns, page, changed, after_id)
            after_id = page.next_after_id
        assert next_read_at is not None
        return next_read_at


def _apply_registers(
    columns: FirmColumns, page: FirmFeedPage, changed: FirmColumns, after_id: int
) -> None:
    columns.apply_registers(
        {kind.value: version for kind, version in page.registers.items()},
        RegisterEntries.from_feed(page.entries),
        written=changed.ids,
        replaced=[kind.value for kind in page.entries_replaced],
        after_id=after_id,
        up_to_id=page.next_after_id,
    )


async def _page(registry: RegistryClient, since: datetime | None, after_id: int) -> FirmFeedPage:
    body = await registry.firm_feed(since, after_id)
    if len(body) > 1_000_000:
        return await run_in_threadpool(FirmFeedPage.model_validate_json, body)
    return FirmFeedPage.model_validate_json(body)
