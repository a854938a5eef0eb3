"""Match events are sent to the registry in the background, in batches, off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from services.gateway.clients.registry import RegistryClient
from shared.errors import ProblemError

log = logging.getLogger("finmatch.gateway.events")


class MatchEventRecorder:
    """A bounded queue drained by one task: requests never wait; statistics tolerate a loss."""

    def __init__(
        self, registry: RegistryClient, *, max_queue: int = 50_000, batch: int = 1_000
    ) -> None:
        self._registry = registry
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max_queue)
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def record(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain())

    async def stop(self) -> None:
        """Send what is queued (briefly), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=5)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def flush(self) -> None:
        await self._queue.join()

    async def _drain(self) -> None:
        while True:
            events = [await self._queue.get()]
            while len(events) < self._batch and not self._queue.empty():
                events.append(self._queue.get_nowait())
            try:
                for attempt in range(3):
                    try:
                        await self._registry.record_match_events(events)
                        break
                    except ProblemError as exc:
                        if exc.status < 500 or attempt == 2:
                            log.warning("dropped %d match events: %s", len(events), exc.detail)
                            self.dropped += len(events)
                            break
                        await asyncio.sleep(0.5 * (attempt + 1))
            finally:
                for _ in events:
                    self._queue.task_done()
