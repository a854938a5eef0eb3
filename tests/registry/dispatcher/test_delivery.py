"""The dispatcher against a real receiver: retries, dead deliveries, disabled endpoints, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.responses import Response

from services.registry.dispatcher import store
from services.registry.dispatcher.outcome import Outcome
from services.registry.dispatcher.sender import AttemptResult
from services.registry.dispatcher.store import ENDPOINT
from shared.schemas.webhooks import Event, webhook_id
from tests.registry.conftest import Actor
from tests.registry.dispatcher.data import (
    add_deliveries,
    add_endpoint,
    attempts,
    delivery,
    endpoint,
    new_secret,
    run_until,
    settings_for,
    statuses,
)
from tests.registry.dispatcher.receiver import Receiver, answer, huge_body, serve


def test_signed_delivery_verifies_at_the_receiver(engine: Engine) -> None:
    with serve(Receiver(secrets=[])) as receiver:
        endpoint_id, secret = add_endpoint(engine, receiver.url)
        receiver.secrets.append(secret)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        run_until(
            engine, settings_for(engine), lambda: delivery(engine, delivery_id).status != "pending"
        )
    [got] = receiver.received
    assert got.verified
    assert got.webhook_id == webhook_id(delivery(engine, delivery_id).event_id, endpoint_id)
    assert delivery(engine, delivery_id).status == "delivered"
    [attempt] = attempts(engine, delivery_id)
    assert attempt.status_code == 204
    assert attempt.error is None


def test_receiver_down_then_up_gets_it_exactly_once(engine: Engine) -> None:
    down_for = 3

    def plan(_webhook_id: str, nth: int) -> Response | None:
        return answer(503) if nth <= down_for else None

    with serve(Receiver(secrets=[], plan=plan)) as receiver:
        endpoint_id, secret = add_endpoint(engine, receiver.url)
        receiver.secrets.append(secret)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        run_until(
            engine, settings_for(engine), lambda: delivery(engine, delivery_id).status != "pending"
        )
    sent_as = webhook_id(delivery(engine, delivery_id).event_id, endpoint_id)
    assert receiver.delivered_ids() == [sent_as]
    assert [r.webhook_id for r in receiver.received] == [sent_as] * (down_for + 1)
    row = delivery(engine, delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 4, 204)
    assert [a.status_code for a in attempts(engine, delivery_id)] == [503, 503, 503, 204]
    # The run of failures ended with a success.
    assert endpoint(engine, endpoint_id).failing_since is None


def test_after_the_last_attempt_the_delivery_is_dead(engine: Engine) -> None:
    with serve(Receiver(secrets=[], plan=lambda _id, _n: answer(500))) as receiver:
        endpoint_id, _secret = add_endpoint(engine, receiver.url)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        settings = settings_for(engine, webhook_retry_schedule_seconds=(0.01, 0.01))
        run_until(engine, settings, lambda: delivery(engine, delivery_id).status != "pending")
    row = delivery(engine, delivery_id)
    assert (row.status, row.attempts) == ("dead", 3)
    assert len(receiver.received) == 3
    assert endpoint(engine, endpoint_id).failing_since is not None


def test_429_waits_for_a_longer_retry_after(engine: Engine) -> None:
    with serve(Receiver(secrets=[], plan=lambda _id, _n: answer(429, retry_after=120))) as receiver:
        endpoint_id, _secret = add_endpoint(engine, receiver.url)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        before = datetime.now(UTC)
        run_until(engine, settings_for(engine), lambda: delivery(engine, delivery_id).attempts == 1)
    row = delivery(engine, delivery_id)
    assert row.status == "pending"
    assert row.next_attempt_at >= before + timedelta(seconds=119)
    assert row.lease_until is None


def test_410_kills_the_delivery_and_disables_the_endpoint(engine: Engine) -> None:
    with serve(Receiver(secrets=[], plan=lambda _id, _n: answer(410))) as receiver:
        endpoint_id, _secret = add_endpoint(engine, receiver.url)
        first, second = add_deliveries(engine, endpoint_id, 2)
        run_until(
            engine,
            settings_for(engine, dispatcher_batch_size=1, dispatcher_concurrency=1),
            lambda: not endpoint(engine, endpoint_id).enabled,
        )
    row = endpoint(engine, endpoint_id)
    assert (row.enabled, row.disabled_reason) == (False, "gone_410")
    assert len(receiver.received) == 1
    found = statuses(engine)
    assert sorted([found[first], found[second]]) == ["cancelled", "dead"]


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_non_retryable_4xx_makes_the_delivery_dead(engine: Engine, status: int) -> None:
    with serve(Receiver(secrets=[], plan=lambda _id, _n: answer(status))) as receiver:
        endpoint_id, _secret = add_endpoint(engine, receiver.url)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        run_until(
            engine, settings_for(engine), lambda: delivery(engine, delivery_id).status != "pending"
        )
    row = delivery(engine, delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("dead", 1, status)
    assert endpoint(engine, endpoint_id).enabled
    assert len(receiver.received) == 1


def test_a_redirect_is_not_followed(engine: Engine) -> None:
    def plan(webhook_id: str, _nth: int) -> Response | None:
        return answer(307, location="/elsewhere") if webhook_id else None

    with serve(Receiver(secrets=[], plan=plan)) as receiver:
        endpoint_id, _secret = add_endpoint(engine, receiver.url)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        run_until(
            engine, settings_for(engine), lambda: delivery(engine, delivery_id).status != "pending"
        )
    assert [r.headers.get("host") for r in receiver.received] == [receiver.url.split("/")[2]]
    assert delivery(engine, delivery_id).status == "dead"
    [attempt] = attempts(engine, delivery_id)
    assert attempt.status_code == 307
    assert "redirect not followed" in attempt.error


def test_a_huge_answer_is_read_only_to_4_kb(engine: Engine) -> None:
    counter: dict[str, int] = {}
    chunks, size = 16_000, 65_536  # 1 GB, if anyone read it all
    with serve(Receiver(secrets=[], plan=lambda _id, _n: huge_body(counter, chunks, size))) as rc:
        endpoint_id, _secret = add_endpoint(engine, rc.url)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        run_until(
            engine, settings_for(engine), lambda: delivery(engine, delivery_id).status != "pending"
        )
    assert delivery(engine, delivery_id).status == "delivered"
    [attempt] = attempts(engine, delivery_id)
    assert attempt.response_excerpt == "x" * 1024
    # The receiver stopped generating soon after the dispatcher hung up (socket buffers aside).
    assert counter["chunks"] < chunks // 10


def test_a_private_target_is_refused_at_send_time(engine: Engine) -> None:
    with serve(Receiver(secrets=[])) as receiver:
        endpoint_id, _secret = add_endpoint(engine, receiver.url)
        [delivery_id] = add_deliveries(engine, endpoint_id)
        settings = settings_for(engine, webhook_allow_private=False)
        run_until(engine, settings, lambda: delivery(engine, delivery_id).status != "pending")
    assert receiver.received == []
    assert delivery(engine, delivery_id).status == "dead"
    [attempt] = attempts(engine, delivery_id)
    assert attempt.status_code is None
    assert attempt.error.startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
    assert "not a public address" in attempt.error


def test_an_endpoint_failing_for_5_days_is_disabled_with_a_notice(
    engine: Engine, portal: Actor, other_portal: Actor
) -> None:
    clock_now = datetime.now(UTC)
    with (
        serve(Receiver(secrets=[], plan=lambda _id, _n: answer(500))) as receiver,
        serve(Receiver(secrets=[])) as ops,
    ):
        created = portal.post(
            "/v1/webhooks/endpoints",
            json={"url": receiver.url, "event_types": ["application.decided"]},
        ).json()
        endpoint_id = created["id"]
        # The owner's operations endpoint hears of it; another's, and one not subscribed, do not.
        notices = portal.post(
            "/v1/webhooks/endpoints",
            json={"url": ops.url, "event_types": ["webhook.endpoint_disabled"]},
        ).json()
        ops.secrets.append(notices["secret"])
        for actor, types in (
            (portal, ["application.decided"]),
            (other_portal, ["webhook.endpoint_disabled"]),
        ):
            made = actor.post("/v1/webhooks/endpoints", json={"url": ops.url, "event_types": types})
            assert made.status_code == 201
        with engine.begin() as conn:
            conn.execute(
                sa.update(ENDPOINT)
                .where(ENDPOINT.c.id == endpoint_id)
                .values(failing_since=clock_now - timedelta(days=5) + timedelta(seconds=30))
            )
        [delivery_id] = add_deliveries(engine, endpoint_id)
        settings = settings_for(engine, webhook_retry_schedule_seconds=(0.0,) * 20)
        # Failing for 30 s short of five days: not yet.
        run_until(engine, settings, lambda: delivery(engine, delivery_id).attempts >= 1)
        assert endpoint(engine, endpoint_id).enabled
        later = clock_now + timedelta(seconds=31)
        run_until(
            engine, settings, lambda: not endpoint(engine, endpoint_id).enabled, clock=lambda: later
        )
        run_until(engine, settings, lambda: len(ops.received) >= 1, clock=lambda: later)
    row = endpoint(engine, endpoint_id)
    assert row.disabled_reason == "failing_5_days"
    assert portal.get(f"/v1/webhooks/endpoints/{endpoint_id}").json()["enabled"] is False
    # The owner finds the notice in its delivery log, beside the cancelled delivery.
    log = portal.get("/v1/webhooks/deliveries", params={"endpoint_id": endpoint_id}).json()
    by_type = {d["event_type"]: d["status"] for d in log["data"]}
    assert by_type == {
        "application.submitted": "cancelled",
        "webhook.endpoint_disabled": "cancelled",
    }
    # ... and its endpoint subscribed to notices got it, signed, once.
    [notice] = ops.received
    assert notice.verified
    body = json.loads(notice.body)
    assert body["type"] == "webhook.endpoint_disabled"
    assert body["data"]["endpoint_id"] == endpoint_id
    assert body["data"]["reason"] == "failing_5_days"


def test_the_disabled_notice_goes_to_any_role_but_a_ping_cannot_be_subscribed(
    portal: Actor, bank: Actor
) -> None:
    for actor in (portal, bank):
        made = actor.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["webhook.endpoint_disabled"]},
        )
        assert made.status_code == 201, made.text
    response = portal.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["webhook.ping"]},
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["event_types"]


def test_a_ping_after_a_rotation_verifies_with_the_old_and_the_new_secret(
    engine: Engine, portal: Actor
) -> None:
    with serve(Receiver(secrets=[])) as receiver:
        created = portal.post(
            "/v1/webhooks/endpoints",
            json={"url": receiver.url, "event_types": ["application.decided"]},
        ).json()
        old = created["secret"]
        new = portal.post(f"/v1/webhooks/endpoints/{created['id']}/rotate-secret").json()["secret"]
        receiver.secrets.append(old)  # a receiver that has not taken the new one yet
        ping = portal.post(f"/v1/webhooks/endpoints/{created['id']}/test").json()
        run_until(engine, settings_for(engine), lambda: delivery(engine, ping["id"]).attempts)
    [got] = receiver.received
    assert got.webhook_id == ping["webhook_id"]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        receiver.secrets[:] = [secret]
        assert receiver.verified(got.body, got.headers)
    receiver.secrets[:] = [new_secret()]
    assert not receiver.verified(got.body, got.headers)
    assert Event.model_validate_json(got.body).type == "webhook.ping"
    logged = portal.get("/v1/webhooks/deliveries", params={"endpoint_id": created["id"]}).json()
    [entry] = logged["data"]
    assert entry["status"] == "delivered"
    assert [a["status_code"] for a in entry["attempt_log"]] == [204]


def test_an_attempt_whose_endpoint_was_deleted_meanwhile_is_dropped(engine: Engine) -> None:
    """The owner deleted the endpoint (its deliveries went with it) while an attempt was in
    flight: recording it is a no-op, not a foreign-key error that stops the dispatcher."""
    endpoint_id, _secret = add_endpoint(engine, "http://127.0.0.1:9/hook")
    add_deliveries(engine, endpoint_id)
    now = datetime.now(UTC)
    [job] = store.claim_due(engine, now, limit=10, lease_seconds=30)
    with engine.begin() as conn:
        conn.execute(sa.delete(ENDPOINT).where(ENDPOINT.c.id == endpoint_id))
    result = AttemptResult(status_code=204, latency_ms=3)
    attempt = store.Attempt(job, result, Outcome("delivered"), now)
    assert store.record_batch(engine, [attempt], 5 * 86400) == {}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.ATTEMPT)).scalar() == 0


def test_a_batch_records_every_attempt_with_its_deliverys_state(engine: Engine) -> None:
    """Attempts recorded together end as each would alone; the endpoint's run of failures
    starts at the first failure after its last success."""
    endpoint_id, _secret = add_endpoint(engine, "http://127.0.0.1:9/hook")
    first, second, third = add_deliveries(engine, endpoint_id, 3)
    now = datetime.now(UTC)
    jobs = {job.delivery_id: job for job in store.claim_due(engine, now, 10, 30)}
    retry_at = now + timedelta(seconds=300)
    batch = [
        store.Attempt(jobs[first], AttemptResult(500, 5), Outcome("pending", retry_at), now),
        store.Attempt(jobs[second], AttemptResult(204, 4), Outcome("delivered"), now),
        store.Attempt(
            jobs[third], AttemptResult(404, 3), Outcome("dead"), now + timedelta(seconds=1)
        ),
    ]
    assert store.record_batch(engine, batch, 5 * 86400) == {}
    rows = {d: delivery(engine, d) for d in (first, second, third)}
    assert [(r.status, r.attempts, r.last_status_code) for r in rows.values()] == [
        ("pending", 1, 500),
        ("delivered", 1, 204),
        ("dead", 1, 404),
    ]
    assert all(r.lease_until is None for r in rows.values())
    assert rows[first].next_attempt_at == retry_at
    assert rows[first].delivered_at is None
    assert rows[second].delivered_at == now
    assert [a.status_code for d in rows for a in attempts(engine, d)] == [500, 204, 404]
    # 500, then a success, then the 404: the run started with the 404.
    assert endpoint(engine, endpoint_id).failing_since == now + timedelta(seconds=1)


def test_a_410_in_a_batch_disables_its_endpoint_once(engine: Engine) -> None:
    endpoint_id, _secret = add_endpoint(engine, "http://127.0.0.1:9/hook")
    gone, delivered, waiting, later = add_deliveries(engine, endpoint_id, 4)
    now = datetime.now(UTC)
    jobs = {job.delivery_id: job for job in store.claim_due(engine, now, 10, 30)}
    batch = [
        store.Attempt(jobs[gone], AttemptResult(410, 5), Outcome("dead", None, "gone_410"), now),
        store.Attempt(jobs[delivered], AttemptResult(204, 4), Outcome("delivered"), now),
    ]
    assert store.record_batch(engine, batch, 5 * 86400) == {endpoint_id: "gone_410"}
    # The receiver took one of them: that stays delivered; what was left pending ends.
    found = statuses(engine)
    assert [found[d] for d in (gone, delivered, waiting, later)] == [
        "dead",
        "delivered",
        "cancelled",
        "cancelled",
    ]
    assert endpoint(engine, endpoint_id).disabled_reason == "gone_410"
    # Another 410 of the same endpoint (an attempt that was in flight meanwhile) is recorded,
    # but the endpoint is disabled already: no second notice.
    late = store.Attempt(jobs[later], AttemptResult(410, 5), Outcome("dead", None, "gone_410"), now)
    assert store.record_batch(engine, [late], 5 * 86400) == {}
    assert [a.status_code for a in attempts(engine, later)] == [410]
    with engine.connect() as conn:
        notices = conn.execute(
            sa.select(sa.func.count())
            .select_from(store.EVENT)
            .where(store.EVENT.c.type == "webhook.endpoint_disabled")
        ).scalar()
    assert notices == 1
