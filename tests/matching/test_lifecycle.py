"""Model lifecycle against a real registry: train, promote, refuse bad artifacts, roll back."""

from __future__ import annotations

import asyncio
import base64
import random
import signal
from datetime import timedelta
from typing import Any

import orjson
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.matching.config import MatchingSettings
from services.matching.events import LocalEventBus, RedisEventBus
from services.matching.jobs import TrainingBusy
from services.matching.lifecycle import PROMOTIONS, ModelManager
from services.matching.train import TrainingRefused
from services.registry.history import prepare_history_batch, write_history_batch
from services.registry.models import Institution, Principal, Product
from services.registry.seed.loader import seed_demo
from shared.enums import PrincipalRole
from shared.schemas.product import ProductCreate
from tests.matching.conftest import SEEDED_AT, TOKEN, matching_settings, registry_client
from tests.polling import until
from tests.registry import data
from tests.services import need_redis

H = {"X-Internal-Token": TOKEN}


def manager(app: FastAPI, settings: MatchingSettings, bus: object | None = None) -> ModelManager:
    return ModelManager(
        settings=settings, registry=registry_client(app), bus=bus or LocalEventBus()
    )  # type: ignore[arg-type]


def test_cold_start_then_first_model_then_no_better_challenger(
    seeded_registry: FastAPI, settings: MatchingSettings
) -> None:
    async def scenario() -> None:
        models = manager(seeded_registry, settings)
        await models.refresh()
        assert models.scorer.is_prior
        first = await models.train()
        assert first.promoted, first.reason
        assert models.scorer.version == first.version
        assert not models.scorer.is_prior
        assert first.metrics["auc"] > 0.7
        assert set(first.candidates) >= {"logistic_regression", "hist_gradient_boosting"}
        # Same data: the champion (refitted on every row) has seen the whole holdout, so
        # nothing is fair to compare on, and the champion stays.
        second = await models.train()
        assert not second.promoted
        assert "nothing fair to compare on" in second.reason
        assert second.champion_metrics is None
        assert models.scorer.version == first.version
        champion = await models.registry.champion()
        assert champion is not None
        assert champion["version"] == first.version
        await models.stop()
        await models.registry.aclose()

    asyncio.run(scenario())


def test_corrupt_artifact_is_refused_and_last_good_model_kept(
    seeded_registry: FastAPI, settings: MatchingSettings
) -> None:
    async def scenario() -> None:
        models = manager(seeded_registry, settings)
        good = await models.train()
        http = models.registry._http
        forged = b"FINMATCH-MODEL\x00\x01" + b"\x00" * 64 + b"not a model"
        upload = await http.post(
            "/internal/models",
            json={
                "version": "m-forged",
                "algorithm": "x",
                "metrics": {},
                "meta": {},
                "artifact_b64": base64.b64encode(forged).decode(),
            },
        )
        assert upload.status_code == 201
        assert (await http.post("/internal/models/m-forged/promote")).status_code == 200
        await models.refresh()
        assert models.scorer.version == good.version
        assert models.last_error is not None
        assert "m-forged" in models.last_error
        # Rolling back restores the good champion, and the error clears.
        restored = await models.rollback()
        assert restored["version"] == good.version
        assert models.last_error is None
        await models.stop()
        await models.registry.aclose()

    asyncio.run(scenario())


def test_training_refused_without_enough_decisions(
    registry_app: FastAPI, settings: MatchingSettings
) -> None:
    async def scenario() -> None:
        models = manager(registry_app, settings)
        with pytest.raises(TrainingRefused):
            await models.train()
        assert models.scorer.is_prior
        assert await models.registry.champion() is None
        await models.stop()
        await models.registry.aclose()

    asyncio.run(scenario())


def test_polling_brings_a_second_replica_to_the_new_champion(seeded_registry: FastAPI) -> None:
    async def scenario() -> None:
        leader = manager(seeded_registry, matching_settings())
        follower = manager(seeded_registry, matching_settings(model_poll_seconds=0.1))
        follower.start()  # its own in-process bus never hears the leader: only polling helps
        outcome = await leader.train()
        await until(lambda: follower.scorer.version == outcome.version)
        for models in (leader, follower):
            await models.stop()
            await models.registry.aclose()

    asyncio.run(scenario())


def subscribers(raw: redis.Redis) -> int:
    (_channel, count), *_ = raw.pubsub_numsub(PROMOTIONS)
    return int(count)


@pytest.mark.redis
def test_redis_announcement_reaches_a_second_replica(seeded_registry: FastAPI) -> None:
    url = need_redis()

    async def scenario() -> None:
        settings = matching_settings(redis_url=url)
        leader = manager(seeded_registry, settings, RedisEventBus(url))
        follower = manager(seeded_registry, settings, RedisEventBus(url))  # polls once an hour
        raw = redis.Redis.from_url(url)
        listening = subscribers(raw)  # other runs' matching services may listen on the server
        follower.start()
        # Published before the follower listens, the announcement would be lost: wait for it.
        await until(lambda: subscribers(raw) > listening)
        raw.close()
        outcome = await leader.train()
        await until(lambda: follower.scorer.version == outcome.version)
        for models in (leader, follower):
            await models.stop()
            await models.bus.aclose()
            await models.registry.aclose()

    asyncio.run(scenario())


def test_the_training_process_leaves_ctrl_c_to_the_service(registry_app: FastAPI) -> None:
    """Ctrl-C in `make run` reaches every process of the terminal: the training worker must
    not die with a traceback of its own; the service shuts its pool down."""
    # The service as a terminal starts it: Ctrl-C raises KeyboardInterrupt (a run started in
    # the background, as by nohup … &, inherits SIGINT ignored, which proves nothing here).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    pool = manager(registry_app, matching_settings())._executor()
    try:
        handler = pool.submit(signal.getsignal, signal.SIGINT).result(timeout=60)
        own = signal.getsignal(signal.SIGINT)
    finally:
        pool.shutdown()
        signal.signal(signal.SIGINT, previous)
    assert handler == signal.SIG_IGN
    assert own is signal.default_int_handler  # the service's own is untouched


async def jobs(models: ModelManager) -> list[dict[str, Any]]:
    response = await models.registry._http.get("/internal/training-jobs")
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


def test_training_is_a_job_with_the_refit_recorded(
    seeded_registry: FastAPI, settings: MatchingSettings
) -> None:
    async def scenario() -> None:
        models = manager(seeded_registry, settings)
        decided = await models.registry.decisions_count()
        outcome = await models.train()
        (job,) = await jobs(models)
        assert (job["status"], job["trigger"], job["progress"]) == ("succeeded", "cli", 1.0)
        assert job["outcome"]["version"] == outcome.version
        assert job["outcome"]["promoted"] is True
        assert job["metrics"] == outcome.metrics  # the holdout's
        # The served model was refitted on every decided row, and says so.
        model = next(
            m for m in await models.registry.list_models() if m["version"] == outcome.version
        )
        assert job["refit"]["rows"] == decided == model["meta"]["refit"]["rows"]
        assert model["meta"]["rows"]["train"] < decided
        assert job["refit"]["data_sha256"] == model["meta"]["data_sha256"]
        assert model["meta"]["holdout_metrics"] == outcome.metrics
        assert model["meta"]["job_id"] == job["id"]
        await models.stop()
        await models.registry.aclose()

    asyncio.run(scenario())


def test_a_job_that_cannot_train_records_why(registry_app: FastAPI, engine: Any) -> None:
    """Past the up-front count (here 1 row), the data itself refuses: the job fails with it."""
    seed_demo(engine, n_firms=60, n_applications=40, now=SEEDED_AT, progress=False)

    async def scenario() -> None:
        models = manager(registry_app, matching_settings(min_training_rows=1))
        with pytest.raises(TrainingRefused, match="need at least 20 of each") as refused:
            await models.train()
        (job,) = await jobs(models)
        assert job["status"] == "failed"
        assert job["error"] == str(refused.value)
        assert job["finished_at"] is not None
        assert job["outcome"] is None
        assert await models.registry.list_models() == []
        await models.stop()
        await models.registry.aclose()

    asyncio.run(scenario())


def test_a_dead_runners_job_blocks_until_its_lease_runs_out(
    seeded_registry: FastAPI, settings: MatchingSettings
) -> None:
    async def scenario() -> None:
        models = manager(seeded_registry, settings)
        # A replica queued a job, then died before it ever reported.
        dead = await models.registry.create_job(
            {"trigger": "admin", "runner": "gone:1:x", "lease_seconds": 0.5}
        )
        with pytest.raises(TrainingBusy) as busy:
            await models.train()
        assert busy.value.job_id == dead["id"]
        await asyncio.sleep(0.6)
        outcome = await models.train()
        assert outcome.promoted
        by_id = {job["id"]: job for job in await jobs(models)}
        assert by_id[dead["id"]]["status"] == "failed"
        assert by_id[dead["id"]]["error"].startswith("runner lost: gone:1:x")
        await models.stop()
        await models.registry.aclose()

    asyncio.run(scenario())


def test_a_replica_stopping_mid_job_records_it(
    seeded_registry: FastAPI, settings: MatchingSettings
) -> None:
    async def scenario() -> None:
        models = manager(seeded_registry, settings)
        job = await models.submit(auto_promote=True, actor=None)
        await asyncio.sleep(0.5)  # into the export or the training
        await models.stop()
        (recorded,) = await jobs(models)
        assert recorded["id"] == job["id"]
        assert recorded["status"] == "failed"
        assert recorded["error"] == "the matching replica stopped while the job ran"
        await models.registry.aclose()

    asyncio.run(scenario())


def test_automatic_retraining_is_a_job_after_enough_new_decisions(
    seeded_registry: FastAPI,
) -> None:
    """FINMATCH_RETRAIN_AFTER_DECISIONS new decisions start the same job as an admin's
    request (trigger auto, refit recorded); one short of it, or once trained on them, none."""

    async def settled(models: ModelManager, rounds: int = 5) -> list[dict[str, Any]]:
        """The jobs after the retraining loop has looked a few times more."""
        await asyncio.sleep(rounds * models.settings.retrain_check_seconds)
        return await jobs(models)

    async def scenario() -> None:
        settings = matching_settings(auto_retrain=True, retrain_check_seconds=0.05)
        models = manager(seeded_registry, settings)
        decided = await models.registry.decisions_count()
        settings.retrain_after_decisions = decided + 1  # one short: no job
        models.start()
        assert await settled(models) == []

        settings.retrain_after_decisions = decided  # exactly enough
        deadline = asyncio.get_running_loop().time() + 300
        while not [j for j in await jobs(models) if j["status"] == "succeeded"]:
            assert asyncio.get_running_loop().time() < deadline, await jobs(models)
            await asyncio.sleep(0.1)
        (job,) = await jobs(models)
        assert (job["trigger"], job["requested_by"], job["progress"]) == ("auto", None, 1.0)
        assert job["refit"]["rows"] == decided
        assert job["outcome"]["promoted"] is True
        assert models.scorer.version == job["outcome"]["version"]
        # No decision since: the loop starts nothing more.
        assert [j["id"] for j in await settled(models)] == [job["id"]]
        await models.stop()
        await models.registry.aclose()

    asyncio.run(scenario())


def _import_history_without_credit_codes(engine: Engine, count: int) -> None:
    """An institution's past decisions as the history import writes them (no live decision at
    all), none with a credit code: each row is a firm of its own."""
    with Session(engine) as session:
        institution = Institution(name="只有历史的银行", kind="bank")
        session.add(institution)
        session.flush()
        principal = Principal(
            role=PrincipalRole.INSTITUTION.value, name="历史导入", institution_id=institution.id
        )
        product = Product(
            **ProductCreate.model_validate(data.product()).model_dump(mode="json"),
            institution_id=institution.id,
        )
        session.add_all([principal, product])
        session.commit()
        ids = (principal.id, institution.id, product.id)
    principal_id, institution_id, product_id = ids
    assert principal_id is not None
    assert institution_id is not None
    assert product_id is not None
    rng = random.Random(15)
    lines = []
    for n in range(count):
        revenue = rng.choice([2, 5, 10, 20, 50, 120]) * 1_000_000
        patents = rng.randint(0, 6)
        approved = (revenue >= 10_000_000 and patents >= 1) != (rng.random() < 0.15)
        firm = data.firm(
            employees=10 + revenue // 1_000_000,
            annual_revenue_yuan=revenue,
            total_assets_yuan=revenue // 2,
            invention_patents=patents,
        )
        for key in ("credit_code", "name", "need_purpose"):
            firm.pop(key)
        submitted = SEEDED_AT - timedelta(days=730 - 3 * n)
        decision = (
            {"outcome": "approved", "approved_amount_yuan": 1_500_000, "rate_bp": 420}
            | {"term_months": 12}
            if approved
            else {"outcome": "rejected", "rejection_reason": "insufficient_revenue"}
        )
        line = {
            "product_id": product_id,
            "firm": firm,
            "requested_amount_yuan": 2_000_000,
            "requested_term_months": 12,
            "submitted_at": submitted.isoformat(),
            "decided_at": (submitted + timedelta(days=5)).isoformat(),
            "decision": decision,
        }
        lines.append((n + 1, orjson.dumps(line)))
    batch = prepare_history_batch(0, lines, key=b"test-hash-key")
    assert not batch.invalid, batch.invalid
    written = write_history_batch(
        engine,
        batch,
        principal_id=principal_id,
        institution_id=institution_id,
        import_id="history",
        request_id=None,
    )
    assert written.status == "committed"


def test_an_imported_history_alone_trains_a_model(
    registry_app: FastAPI, engine: Engine, settings: MatchingSettings
) -> None:
    """Imported decisions count towards the minimum (they are what training reads), and a
    history without credit codes, whose holdout has no firm with two rows to rank (no NDCG),
    still uploads its model: the metrics without a value are left out, never sent as NaN."""
    _import_history_without_credit_codes(engine, settings.min_training_rows + 40)

    async def scenario() -> None:
        models = manager(registry_app, settings)
        assert await models.registry.decisions_count() == settings.min_training_rows + 40
        outcome = await models.train()
        assert outcome.promoted, outcome.reason
        champion = await models.registry.champion()
        assert champion is not None
        assert champion["version"] == outcome.version
        assert "ndcg_at_5" not in champion["metrics"]
        assert "ndcg_at_5" not in champion["meta"]["holdout_metrics"]
        assert champion["metrics"]["log_loss"] > 0
        (job,) = await jobs(models)
        assert job["status"] == "succeeded"
        await models.stop()
        await models.registry.aclose()

    asyncio.run(scenario())
