"""A training job's runner side: its reports to the registry, and its heartbeat.

The registry keeps the job (see services/registry/api/training_jobs.py); this replica only
reports on it. Every report renews the job's lease, and a heartbeat reports while the worker
process trains, so a live runner is never taken for a dead one. Once the registry answers that
the job is finished or not ours (it was failed as "runner lost" meanwhile), the runner must
stop: it uploads and promotes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from services.matching.registry_client import RegistryClient, RegistryError
from shared.errors import ServiceUnavailable

log = logging.getLogger("finmatch.matching.jobs")
LOST_CODES = {"job_finished", "job_not_owned"}


def runner_id() -> str:
    """This process, as a job's runner: host, pid and a nonce (pids repeat after restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class TrainingBusy(Exception):
    """Another training job is queued or running (on any replica)."""

    def __init__(self, message: str, job_id: int | None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobLost(Exception):
    """The registry no longer lets this runner report on the job: stop without a result."""


@dataclass
class JobReporter:
    registry: RegistryClient
    job_id: int
    runner: str
    lease_seconds: float
    lost: str | None = None

    async def report(self, **changes: Any) -> dict[str, Any]:
        """Send ``changes`` (status, stage, progress, metrics, refit, outcome, error)."""
        if self.lost is not None:
            raise JobLost(self.lost)
        body = {"runner": self.runner, "lease_seconds": self.lease_seconds, **changes}
        try:
            return await self.registry.report_job(self.job_id, body)
        except RegistryError as exc:
            if exc.status == 409 and exc.code in LOST_CODES:
                self.lost = f"job {self.job_id} was taken from this runner: {exc.detail}"
                raise JobLost(self.lost) from exc
            raise

    def check(self) -> None:
        """Raise JobLost if a heartbeat learned that the job is no longer ours."""
        if self.lost is not None:
            raise JobLost(self.lost)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.report()
            except JobLost:
                log.error("training job %s: %s", self.job_id, self.lost)
                return
            except (ServiceUnavailable, RegistryError) as exc:
                # The next beat may get through before the lease runs out.
                log.warning("training job %s: heartbeat failed: %s", self.job_id, exc)

    @contextlib.asynccontextmanager
    async def heartbeat(self) -> AsyncIterator[None]:
        """Report in the background while the body runs."""
        task = asyncio.create_task(self._beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
