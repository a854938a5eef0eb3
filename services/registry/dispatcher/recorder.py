"""Group commit of attempts: those that finish while one transaction runs go in the next one.

Recording each attempt in a transaction of its own (four to five statements) was a fifth of the
dispatcher's CPU per event (bench-webhooks, bench/README.md). Here each finished attempt joins a
queue; one flush at a time takes what has queued (up to ``max_batch``) and records it with
``store.record_batch``: one transaction and one statement per kind of row. Nothing waits to fill
a batch: under a light load batches are small, under a heavy one they grow by themselves.

The guarantees stay those of a transaction per attempt: the lease of every attempt of a batch
is held until that batch commits, so no other dispatcher sends them meanwhile; a batch that
fails (the database away) records none of its attempts, and their leases run out, so they are
sent again (at least once, never lost); ``record`` returns only once its attempt is committed,
and the dispatcher waits for the attempts in flight before it stops.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine

from services.registry.dispatcher import store
from services.registry.dispatcher.metrics import DISABLED, RECORD_BATCH

logger = logging.getLogger("finmatch.dispatcher")


class Recorder:
    def __init__(
        self, engine: Engine, disable_after_failing_seconds: float, max_batch: int = 256
    ) -> None:
        self.engine = engine
        self.disable_after_failing_seconds = disable_after_failing_seconds
        self.max_batch = max_batch
        self.queue: list[tuple[store.Attempt, asyncio.Future[None]]] = []
        self.flushing: asyncio.Task[None] | None = None

    async def record(self, attempt: store.Attempt) -> None:
        """Return once ``attempt`` is committed; raise what stopped its batch from committing."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((attempt, done))
        if self.flushing is None or self.flushing.done():
            self.flushing = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self.queue:
            batch = self.queue[: self.max_batch]
            del self.queue[: self.max_batch]
            attempts = [attempt for attempt, _done in batch]
            RECORD_BATCH.observe(len(batch))
            try:
                disabled = await asyncio.to_thread(
                    store.record_batch, self.engine, attempts, self.disable_after_failing_seconds
                )
            except Exception as exc:
                # Their leases run out and they are sent again: at least once, never lost.
                logger.exception(
                    "could not record %d webhook attempts (deliveries %s)",
                    len(attempts),
                    ", ".join(str(a.job.delivery_id) for a in attempts[:20]),
                )
                for _attempt, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for reason in disabled.values():
                DISABLED.labels(reason).inc()
            for _attempt, done in batch:
                if not done.done():
                    done.set_result(None)
