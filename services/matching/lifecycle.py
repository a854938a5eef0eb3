"""Model lifecycle: load the champion, train challengers off the serving path, promote, roll back.

Every replica serves the registry's champion. A promotion is announced on the event bus
(Redis pub/sub when configured) and every replica also polls, so a replica that missed the
message catches up within ``model_poll_seconds``. A corrupt or foreign artifact is refused;
the replica keeps serving what it had and says so in ``/readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from fastapi.concurrency import run_in_threadpool

from services.matching.artifact import ArtifactError, dump, load
from services.matching.config import MatchingSettings
from services.matching.events import EventBus
from services.matching.model import PriorModel, Scorer
from services.matching.registry_client import RegistryClient, RegistryError
from services.matching.train import TrainingRefused, evaluate, parse_export, train
from shared.errors import ServiceUnavailable

log = logging.getLogger("finmatch.matching.lifecycle")
PROMOTIONS = "finmatch:model-promoted"
TRAIN_LOCK = "finmatch:model-training"
# Promotion compares log loss on the challenger's holdout (lower is better): it rewards
# calibrated probabilities, which the ranking score multiplies by coverage and cost.
COMPARE_METRIC = "log_loss"


def train_job(
    lines: list[bytes], key: bytes, champion_blob: bytes | None, min_rows: int
) -> dict[str, Any]:
    """Train a challenger and score the champion on the same holdout (runs in a worker process)."""
    result = train(parse_export(lines), min_rows=min_rows)
    champion_metrics: dict[str, float] | None = None
    if champion_blob is not None:
        try:
            champion = load(champion_blob, key)
        except ArtifactError as exc:  # e.g. an older feature set: it cannot be compared
            log.warning("champion not comparable: %s", exc)
        else:
            champion_metrics = evaluate(champion.predict, result.holdout)
    return {
        "version": result.version,
        "algorithm": result.chosen,
        "metrics": result.metrics,
        "candidates": result.candidates,
        "meta": result.meta,
        "artifact": dump(result, key),
        "champion_metrics": champion_metrics,
    }


@dataclass
class TrainOutcome:
    version: str
    algorithm: str
    metrics: dict[str, float]
    candidates: dict[str, dict[str, float]]
    champion_version: str | None
    champion_metrics: dict[str, float] | None
    promoted: bool
    reason: str


@dataclass
class ModelManager:
    settings: MatchingSettings
    registry: RegistryClient
    bus: EventBus
    scorer: Scorer = field(default_factory=PriorModel)
    last_error: str | None = None
    champion: dict[str, Any] | None = None  # the registry's record of what we serve
    decisions_at_last_training: int | None = None
    _pool: ProcessPoolExecutor | None = None
    _training: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    # --- serving the champion -------------------------------------------------------------
    async def refresh(self) -> None:
        """Load the registry's champion if it is not the one we serve."""
        try:
            champion = await self.registry.champion()
        except (ServiceUnavailable, RegistryError) as exc:
            self.last_error = f"registry unavailable while checking the champion: {exc}"
            return
        if champion is None or champion["version"] == self.scorer.version:
            self.champion = champion
            self.last_error = None
            return
        version = champion["version"]
        try:
            blob = await self.registry.artifact(version)
            self.scorer = await run_in_threadpool(load, blob, self.settings.signing_key)
        except ArtifactError as exc:
            self.last_error = f"refused model {version}: {exc}; serving {self.scorer.version}"
            log.error(self.last_error)
            return
        except (ServiceUnavailable, RegistryError) as exc:
            self.last_error = f"could not fetch model {version}: {exc}"
            return
        self.champion = champion
        self.last_error = None
        log.info("now serving model %s", version)

    # --- training and promotion -----------------------------------------------------------
    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # A separate process: training never competes with ranking for the GIL.
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
        return self._pool

    async def train(self, *, auto_promote: bool = True, actor: int | None = None) -> TrainOutcome:
        if self._training.locked():
            raise TrainingRefused("a training run is already in progress on this replica")
        async with self._training, self._cluster_lock():
            decisions = await self.registry.decisions_count()
            lines = await self.registry.training_export()
            champion = await self.registry.champion()
            champion_blob = await self.registry.artifact(champion["version"]) if champion else None
            loop = asyncio.get_running_loop()
            job = await loop.run_in_executor(
                self._executor(),
                train_job,
                lines,
                self.settings.signing_key,
                champion_blob,
                self.settings.min_training_rows,
            )
            self.decisions_at_last_training = decisions
            await self.registry.upload(
                version=job["version"],
                algorithm=job["algorithm"],
                metrics=job["metrics"],
                meta=job["meta"] | {"candidates": job["candidates"], "decisions": decisions},
                artifact=job["artifact"],
            )
            outcome = self._judge(job, champion)
            if outcome.promoted and auto_promote:
                await self.promote(outcome.version, actor=actor)
            elif not auto_promote:
                outcome.promoted = False
                outcome.reason += "; left as a candidate (auto_promote is off)"
            return outcome

    @staticmethod
    def _judge(job: dict[str, Any], champion: dict[str, Any] | None) -> TrainOutcome:
        new, old = job["metrics"], job["champion_metrics"]
        if champion is None:
            better, reason = True, "no champion yet: the first model replaces the rule prior"
        elif old is None:
            better, reason = True, "the champion cannot be scored on this holdout"
        else:
            better = new[COMPARE_METRIC] < old[COMPARE_METRIC]
            verdict = "beats" if better else "does not beat"
            reason = (
                f"{COMPARE_METRIC} {new[COMPARE_METRIC]:.4f} {verdict} the champion's "
                f"{old[COMPARE_METRIC]:.4f} on the same holdout"
            )
        return TrainOutcome(
            version=job["version"],
            algorithm=job["algorithm"],
            metrics=new,
            candidates=job["candidates"],
            champion_version=None if champion is None else champion["version"],
            champion_metrics=old,
            promoted=better,
            reason=reason,
        )

    async def promote(self, version: str, *, actor: int | None = None) -> dict[str, Any]:
        promoted = await self.registry.promote(version, actor)
        await self.bus.publish(PROMOTIONS, version)
        await self.refresh()
        return promoted

    async def rollback(self, *, actor: int | None = None) -> dict[str, Any]:
        restored = await self.registry.rollback(actor)
        await self.bus.publish(PROMOTIONS, restored["version"])
        await self.refresh()
        return restored

    @contextlib.asynccontextmanager
    async def _cluster_lock(self):  # type: ignore[no-untyped-def]
        """One training run across replicas (Redis SET NX); without Redis, per replica."""
        if not self.settings.redis_url:
            yield
            return
        client = aioredis.from_url(self.settings.redis_url, socket_connect_timeout=2)
        acquired = False
        try:
            try:
                acquired = bool(await client.set(TRAIN_LOCK, "1", nx=True, ex=3600))
            except (aioredis.RedisError, OSError):
                acquired = True  # Redis down: fall back to the replica's own lock
            if not acquired:
                raise TrainingRefused("another replica is training a model right now")
            yield
        finally:
            if acquired:
                with contextlib.suppress(aioredis.RedisError, OSError):
                    await client.delete(TRAIN_LOCK)
            await client.aclose()

    # --- background loops -----------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._poll_loop()),
            asyncio.create_task(self._listen_loop()),
        ]
        if self.settings.auto_retrain:
            self._tasks.append(asyncio.create_task(self._retrain_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_poll_seconds)
            await self.refresh()

    async def _listen_loop(self) -> None:
        async for version in self.bus.subscribe(PROMOTIONS):
            log.info("promotion of %s announced", version)
            await self.refresh()

    async def _retrain_loop(self) -> None:
        """Retrain when enough new decisions arrived since the last training."""
        while True:
            await asyncio.sleep(self.settings.retrain_check_seconds)
            try:
                count = await self.registry.decisions_count()
                last = self.decisions_at_last_training
                if last is None:  # trained elsewhere: the champion's record says on how much
                    last = int((self.champion or {}).get("meta", {}).get("decisions", 0))
                if count - last >= self.settings.retrain_after_decisions:
                    outcome = await self.train()
                    log.info("automatic retraining: %s (%s)", outcome.version, outcome.reason)
            except (TrainingRefused, ServiceUnavailable, RegistryError) as exc:
                log.warning("automatic retraining skipped: %s", exc)


def _ignore_interrupts() -> None:
    """In the training process: Ctrl-C reaches the whole terminal's process group, but the
    service, not the worker, decides when training stops (it shuts the pool down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
