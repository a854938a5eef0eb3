"""The dispatcher's loop: claim due deliveries, send them concurrently, record the attempts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from services.registry.config import RegistrySettings
from services.registry.dispatcher import store
from services.registry.dispatcher.metrics import (
    ATTEMPT_DURATION,
    ATTEMPTS,
    DELIVERIES,
    RETENTION_REMOVED,
)
from services.registry.dispatcher.outcome import decide
from services.registry.dispatcher.recorder import Recorder
from services.registry.dispatcher.schedule import RetrySchedule
from services.registry.dispatcher.sender import make_client, send
from services.registry.dispatcher.signing import signed_headers
from services.registry.registers.sweep import SWEEP_INTERVAL_SECONDS, sweep_abandoned_uploads
from shared.schemas.webhooks import Event, EventType, webhook_id

logger = logging.getLogger("finmatch.dispatcher")
# The wait between claims while the last one found deliveries (a stream is flowing).
BUSY_POLL_SECONDS = 0.05


def _utcnow() -> datetime:
    return datetime.now(UTC)


def event_body(job: store.Job) -> bytes:
    """The envelope every receiver gets: ``{type, timestamp, data}``."""
    event = Event(
        type=EventType(job.event_type), timestamp=job.event_created_at, data=job.event_data
    )
    return event.model_dump_json().encode()


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        settings: RegistrySettings,
        *,
        clock: Callable[[], datetime] = _utcnow,
        schedule: RetrySchedule | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.schedule = schedule or RetrySchedule(
            settings.webhook_retry_schedule_seconds, settings.webhook_retry_jitter
        )
        self.client = client or make_client(
            settings.webhook_connect_timeout_seconds,
            settings.webhook_timeout_seconds,
            settings.webhook_ca_bundle,
            max_connections=settings.dispatcher_concurrency,
        )
        self.recorder = Recorder(engine, settings.webhook_disable_after_failing_seconds)
        self.in_flight: set[asyncio.Task[None]] = set()
        # The retention clean-up runs beside the sends, once at start and then every interval.
        self.cleanup: asyncio.Task[None] | None = None
        self.next_cleanup = time.monotonic()
        # Abandoned register uploads are swept with it, at most once an hour.
        self.next_register_sweep = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish the sends in flight and return."""
        settings = self.settings
        try:
            while not stop.is_set():
                self._start_cleanup_when_due(stop)
                free = settings.dispatcher_concurrency - len(self.in_flight)
                limit = min(settings.dispatcher_batch_size, free)
                jobs: list[store.Job] = []
                if limit > 0:
                    try:
                        jobs = await asyncio.to_thread(
                            store.claim_due,
                            self.engine,
                            self.clock(),
                            limit,
                            settings.dispatcher_lease_seconds,
                        )
                    except Exception:
                        logger.exception("could not claim due webhook deliveries")
                if stop.is_set() and jobs:
                    # Claimed as the stop came: hand them straight back to the others.
                    await asyncio.to_thread(
                        store.release, self.engine, [j.delivery_id for j in jobs]
                    )
                    break
                for job in jobs:
                    task = asyncio.create_task(self._deliver(job))
                    self.in_flight.add(task)
                    task.add_done_callback(self.in_flight.discard)
                if limit > 0 and len(jobs) == limit:
                    continue  # more may be due: claim again at once
                await self._wait(stop, full=limit == 0, busy=bool(jobs))
        finally:
            if self.cleanup is not None:  # it stops after its current batch
                await asyncio.gather(self.cleanup, return_exceptions=True)
            if self.in_flight:
                logger.info("finishing %d webhook sends in flight", len(self.in_flight))
                await asyncio.gather(*self.in_flight, return_exceptions=True)
            await self.client.aclose()

    def _start_cleanup_when_due(self, stop: asyncio.Event) -> None:
        if self.cleanup is not None and not self.cleanup.done():
            return
        now = time.monotonic()
        if now < self.next_cleanup:
            return
        self.next_cleanup = now + self.settings.dispatcher_cleanup_interval_seconds
        self.cleanup = asyncio.create_task(self.clean_up(stop))

    async def clean_up(self, stop: asyncio.Event) -> None:
        """Delete what the retention has expired, one short transaction per batch (each in a
        thread: the loop goes on claiming and sending meanwhile). Another dispatcher doing the
        same at once skips the rows this one holds (store.py)."""
        settings = self.settings
        cutoff = self.clock() - timedelta(days=settings.webhook_retention_days)
        limit = settings.dispatcher_cleanup_batch_size
        removed: dict[str, int] = {}
        try:
            for table, step in store.RETENTION_STEPS:
                while not stop.is_set():
                    count = await asyncio.to_thread(step, self.engine, cutoff, limit)
                    RETENTION_REMOVED.labels(table).inc(count)
                    removed[table] = removed.get(table, 0) + count
                    if count < limit:
                        break
        except Exception:  # the database may be away: the next interval tries again
            logger.exception("webhook outbox clean-up failed")
        if any(removed.values()):
            logger.info("webhook outbox clean-up removed %s", removed, extra={"removed": removed})
        if not stop.is_set() and time.monotonic() >= self.next_register_sweep:
            self.next_register_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS
            try:
                await asyncio.to_thread(
                    sweep_abandoned_uploads,
                    self.engine,
                    settings.register_upload_ttl_hours,
                    self.clock(),
                )
            except Exception:  # the database may be away: the next hour tries again
                logger.exception("register upload sweep failed")

    async def _wait(self, stop: asyncio.Event, *, full: bool, busy: bool = False) -> None:
        """Until the next claim: a poll, or only BUSY_POLL_SECONDS while events are flowing
        (the last claim found some), so a steady stream is not held back a whole poll."""
        poll = self.settings.dispatcher_poll_seconds
        waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
        if full:  # every slot is busy: go on as soon as one is free
            waits |= set(self.in_flight)
        _done, pending = await asyncio.wait(
            waits,
            timeout=min(BUSY_POLL_SECONDS, poll) if busy else poll,
            return_when="FIRST_COMPLETED",
        )
        for future in pending:
            if future not in self.in_flight:
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await future

    async def _deliver(self, job: store.Job) -> None:
        settings = self.settings
        body = event_body(job)
        attempted_at = self.clock()
        headers = signed_headers(
            webhook_id(job.event_id, job.endpoint_id), attempted_at, body, job.secrets
        )
        started = time.perf_counter()
        result = await send(
            self.client,
            job.url,
            body,
            headers,
            allow_private=settings.webhook_private_targets_allowed,
            total_timeout=settings.webhook_timeout_seconds,
            max_bytes=settings.webhook_response_max_bytes,
        )
        ATTEMPT_DURATION.observe(time.perf_counter() - started)
        attempts = job.attempts + 1
        outcome = decide(
            result, attempts, self.clock(), self.schedule, settings.webhook_retry_after_max_seconds
        )
        try:
            await self.recorder.record(store.Attempt(job, result, outcome, attempted_at))
        except Exception:  # logged by the recorder; the lease runs out and it is sent again
            return
        if result.refused:
            ATTEMPTS.labels("refused").inc()
        elif outcome.succeeded:
            ATTEMPTS.labels("success").inc()
        elif outcome.status == "pending":
            ATTEMPTS.labels("retry").inc()
        else:
            ATTEMPTS.labels("failed").inc()
        if outcome.status != "pending":
            DELIVERIES.labels(outcome.status).inc()
        log = logger.info if outcome.succeeded else logger.warning
        log(
            "webhook delivery %s attempt %d to endpoint %s: %s → %s",
            job.delivery_id,
            attempts,
            job.endpoint_id,
            result.status_code if result.error is None else result.error,
            outcome.status,
        )
