"""Model lifecycle: load the champion, train challengers off the serving path, promote, roll back.

Every replica serves the registry's champion. A promotion is announced on the event bus
(Redis pub/sub when configured) and every replica also polls, so a replica that missed the
message catches up within ``model_poll_seconds``. A corrupt or foreign artifact is refused;
the replica keeps serving what it had and says so in ``/readyz``.

Training is a job (services/matching/jobs.py): the registry keeps it, one at a time across
replicas; the replica that queued it runs it in a worker process, reports its progress, and
records its end, whether the request that asked for it is still there or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi.concurrency import run_in_threadpool

from services.matching.artifact import ArtifactError, dump, load
from services.matching.config import MatchingSettings
from services.matching.events import EventBus
from services.matching.jobs import JobLost, JobReporter, TrainingBusy, runner_id
from services.matching.model import LearnedModel, PriorModel, Scorer
from services.matching.registry_client import RegistryClient, RegistryError
from services.matching.tables import Floats
from services.matching.train import (
    TrainingRefused,
    TrainingSet,
    evaluate,
    parse_export,
    train,
)
from shared.errors import ServiceUnavailable
from shared.schemas.training import JobTrigger

log = logging.getLogger("finmatch.matching.lifecycle")
PROMOTIONS = "finmatch:model-promoted"
# Promotion compares log loss on the challenger's holdout (lower is better): it rewards
# calibrated probabilities, which the ranking score multiplies by coverage and cost.
COMPARE_METRIC = "log_loss"
# Why an automatic retraining may not happen this round; the next round tries again.
RETRAIN_SKIPPED = (TrainingRefused, TrainingBusy, JobLost, ServiceUnavailable, RegistryError)


def train_job(
    lines: list[bytes], key: bytes, champion_blob: bytes | None, min_rows: int
) -> dict[str, Any]:
    """Train a challenger; score it and the champion on the holdout rows the champion never
    saw (runs in a worker process)."""
    result = train(parse_export(lines), min_rows=min_rows)
    comparison: dict[str, Any] | None = None
    if champion_blob is not None:
        try:
            champion = load(champion_blob, key)
        except ArtifactError as exc:  # e.g. an older feature set: it cannot be compared
            log.warning("champion not comparable: %s", exc)
        else:
            comparison = compare(result.holdout, result.selected.predict_proba, champion)
    return {
        "version": result.version,
        "algorithm": result.chosen,
        "metrics": result.metrics,
        "candidates": result.candidates,
        "meta": result.meta,
        "refit": {"rows": result.meta["refit"]["rows"], "data_sha256": result.meta["data_sha256"]},
        "artifact": dump(result, key),
        "comparison": comparison,
    }


def compare(
    holdout: TrainingSet, challenger: Callable[[Floats], Floats], champion: LearnedModel
) -> dict[str, Any]:
    """Both models on the holdout rows decided after everything the champion was fitted on.

    A champion refitted on all rows has seen the older part of today's holdout: scored there
    it would look better than it is. Only the newer rows are fair to both (the challenger's
    selection fit has seen none of the holdout).
    """
    window = champion.meta.get("training_window") or {}
    seen_until = window.get("last_decided_at")
    unseen = holdout
    if seen_until:
        cut = np.datetime64(str(seen_until).removesuffix("Z"), "us")
        unseen = holdout.take(holdout.decided_at > cut)
    fair = len(unseen) > 0
    return {
        "rows": len(unseen),
        "seen_until": seen_until,
        "champion": finite(evaluate(champion.predict, unseen)) if fair else None,
        "challenger": finite(evaluate(challenger, unseen)) if fair else None,
    }


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that have a value: JSON has no NaN (an AUC of a one-class sample has none)."""
    return {name: value for name, value in metrics.items() if math.isfinite(value)}


def finite_tree(value: Any) -> Any:
    """``value`` with every float that is not finite left out of its dicts (and lists): what
    JSON can carry. A history imported without credit codes has no firm with two holdout
    rows, so its ``ndcg_at_5`` has no value, in the metrics and again in the model's meta."""
    if isinstance(value, dict):
        return {key: finite_tree(item) for key, item in value.items() if _has_value(item)}
    if isinstance(value, list | tuple):
        return [finite_tree(item) for item in value if _has_value(item)]
    return value


def _has_value(item: Any) -> bool:
    return not isinstance(item, float) or math.isfinite(item)


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
    runner: str = field(default_factory=runner_id)  # this replica, as a job's runner
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _jobs: set[asyncio.Task[None]] = field(default_factory=set)  # training jobs running here

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

    async def submit(
        self,
        *,
        trigger: JobTrigger = JobTrigger.ADMIN,
        auto_promote: bool = True,
        actor: int | None = None,
    ) -> dict[str, Any]:
        """Queue a training job and run it in the background; answers the job at once.

        The job is this replica's task, not the request's: a client that disconnects, or a
        gateway that times out, leaves it running. Refused up front (TrainingRefused) when
        there are too few decisions to train on; TrainingBusy while another job is active.
        """
        job = await self._open_job(trigger, auto_promote, actor)
        task = asyncio.create_task(self._background(job["id"], auto_promote, actor))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return job

    async def train(
        self,
        *,
        auto_promote: bool = True,
        actor: int | None = None,
        trigger: JobTrigger = JobTrigger.CLI,
    ) -> TrainOutcome:
        """The same job, run inline (the CLI, automatic retraining); raises what failed it."""
        job = await self._open_job(trigger, auto_promote, actor)
        return await self.run_job(job["id"], auto_promote=auto_promote, actor=actor)

    async def _open_job(
        self, trigger: JobTrigger, auto_promote: bool, actor: int | None
    ) -> dict[str, Any]:
        decisions = await self.registry.decisions_count()
        if decisions < self.settings.min_training_rows:
            raise TrainingRefused(
                f"{decisions} decisions to train on (live and imported); "
                f"need at least {self.settings.min_training_rows}"
            )
        try:
            return await self.registry.create_job(
                {
                    "trigger": trigger.value,
                    "requested_by": actor,
                    "auto_promote": auto_promote,
                    "runner": self.runner,
                    "lease_seconds": self.settings.training_lease_seconds,
                }
            )
        except RegistryError as exc:
            if exc.status == 409 and exc.code == "training_in_progress":
                raise TrainingBusy(exc.detail, exc.problem.get("job_id")) from exc
            raise

    async def _background(self, job_id: int, auto_promote: bool, actor: int | None) -> None:
        try:
            outcome = await self.run_job(job_id, auto_promote=auto_promote, actor=actor)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recorded in the job by run_job; nobody awaits this task
            log.warning("training job %s failed: %s", job_id, exc)
        else:
            log.info("training job %s: %s (%s)", job_id, outcome.version, outcome.reason)

    async def run_job(
        self, job_id: int, *, auto_promote: bool = True, actor: int | None = None
    ) -> TrainOutcome:
        """Run a queued job to its end and record the end in the registry, success or not."""
        reporter = JobReporter(
            self.registry, job_id, self.runner, self.settings.training_lease_seconds
        )
        try:
            async with reporter.heartbeat():
                await reporter.report(status="running", stage="exporting", progress=0.05)
                outcome = await self._train_and_judge(reporter, auto_promote, actor, job_id)
        except JobLost:
            raise
        except BaseException as exc:
            await self._record_failure(reporter, exc)
            raise
        return outcome

    @staticmethod
    async def _record_failure(reporter: JobReporter, exc: BaseException) -> None:
        if isinstance(exc, TrainingRefused):
            error = str(exc)
        elif isinstance(exc, asyncio.CancelledError):
            error = "the matching replica stopped while the job ran"
        else:
            error = f"{type(exc).__name__}: {exc}"
        report = reporter.report(status="failed", error=error[:2000])
        try:  # shielded: a job cancelled by a shutdown still says why it ended
            await asyncio.wait_for(asyncio.shield(report), timeout=5)
        except (JobLost, ServiceUnavailable, RegistryError, TimeoutError) as failed:
            log.error("training job %s: could not record its failure: %s", reporter.job_id, failed)

    async def _train_and_judge(
        self, reporter: JobReporter, auto_promote: bool, actor: int | None, job_id: int
    ) -> TrainOutcome:
        decisions = await self.registry.decisions_count()
        lines = await self.registry.training_export()
        champion = await self.registry.champion()
        champion_blob = await self.registry.artifact(champion["version"]) if champion else None
        await reporter.report(stage="training", progress=0.2)
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(
            self._executor(),
            train_job,
            lines,
            self.settings.signing_key,
            champion_blob,
            self.settings.min_training_rows,
        )
        reporter.check()  # lost meanwhile: another job may be running; upload nothing
        await reporter.report(
            stage="uploading", progress=0.8, metrics=finite(job["metrics"]), refit=job["refit"]
        )
        self.decisions_at_last_training = decisions
        await self.registry.upload(
            version=job["version"],
            algorithm=job["algorithm"],
            metrics=finite(job["metrics"]),
            meta=finite_tree(
                job["meta"]
                | {"candidates": job["candidates"], "decisions": decisions, "job_id": job_id}
            ),
            artifact=job["artifact"],
        )
        outcome = self._judge(job, champion)
        await reporter.report(stage="judging", progress=0.9)
        if outcome.promoted and auto_promote:
            await self.promote(outcome.version, actor=actor)
        elif not auto_promote:
            outcome.promoted = False
            outcome.reason += "; left as a candidate (auto_promote is off)"
        await reporter.report(
            status="succeeded",
            stage="done",
            progress=1.0,
            outcome={
                "version": outcome.version,
                "algorithm": outcome.algorithm,
                "promoted": outcome.promoted,
                "reason": outcome.reason,
                "champion_version": outcome.champion_version,
                "champion_metrics": outcome.champion_metrics,
            },
        )
        return outcome

    @staticmethod
    def _judge(job: dict[str, Any], champion: dict[str, Any] | None) -> TrainOutcome:
        comparison = job["comparison"]
        old: dict[str, float] | None = None
        if champion is None:
            better, reason = True, "no champion yet: the first model replaces the rule prior"
        elif comparison is None:
            better, reason = True, "the champion cannot be scored on this holdout"
        elif comparison["rows"] == 0:
            better = False
            reason = (
                f"no holdout decision is newer than the champion's training data (up to "
                f"{comparison['seen_until']}): nothing fair to compare on, the champion stays"
            )
        else:
            new, old = comparison["challenger"], comparison["champion"]
            better = new[COMPARE_METRIC] < old[COMPARE_METRIC]
            verdict = "beats" if better else "does not beat"
            reason = (
                f"{COMPARE_METRIC} {new[COMPARE_METRIC]:.4f} {verdict} the champion's "
                f"{old[COMPARE_METRIC]:.4f} on {comparison['rows']} holdout decisions it "
                f"never saw"
            )
        return TrainOutcome(
            version=job["version"],
            algorithm=job["algorithm"],
            metrics=job["metrics"],
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

    # --- background loops -----------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._poll_loop()),
            asyncio.create_task(self._listen_loop()),
        ]
        if self.settings.auto_retrain:
            self._tasks.append(asyncio.create_task(self._retrain_loop()))

    async def stop(self) -> None:
        """Stop the loops and any training job here (each job records that it was stopped)."""
        running = [*self._tasks, *self._jobs]
        for task in running:
            task.cancel()
        for task in running:
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
                    # The same job path as an admin's request: one job across replicas, and
                    # the job's record says how it went.
                    outcome = await self.train(trigger=JobTrigger.AUTO)
                    log.info("automatic retraining: %s (%s)", outcome.version, outcome.reason)
            except RETRAIN_SKIPPED as exc:
                log.warning("automatic retraining skipped: %s", exc)


def _ignore_interrupts() -> None:
    """In the training process: Ctrl-C reaches the whole terminal's process group, but the
    service, not the worker, decides when training stops (it shuts the pool down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
