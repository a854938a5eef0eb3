"""The dispatcher's database work: claim due deliveries with a lease, record attempts, release.

PostgreSQL: the claim locks its rows with FOR UPDATE SKIP LOCKED, so two dispatchers never claim
the same delivery and neither waits for the other. SQLite: the claim is one UPDATE in a writer's
transaction (BEGIN IMMEDIATE), which serialises claimers just as well.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry.db import is_sqlite, write_session
from services.registry.dispatcher.outcome import FAILING, Outcome
from services.registry.dispatcher.sender import AttemptResult
from services.registry.models.columns import UtcDateTime, table_of
from services.registry.models.webhooks import (
    MatchScan,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from shared.schemas.webhooks import EventType

logger = logging.getLogger("finmatch.dispatcher")

DELIVERY = table_of(WebhookDelivery)
ENDPOINT = table_of(WebhookEndpoint)
EVENT = table_of(OutboxEvent)
ATTEMPT = table_of(WebhookAttempt)
SCAN = table_of(MatchScan)
# The notice of an endpoint the dispatcher disables: in its delivery log, and sent to the
# owner's other endpoints that subscribe to it.
DISABLED_NOTICE = EventType.ENDPOINT_DISABLED.value


@dataclass(frozen=True)
class Job:
    """A claimed delivery with what sending it needs."""

    delivery_id: int
    attempts: int
    endpoint_id: int
    url: str
    secrets: tuple[str, ...]
    event_id: int
    event_type: str
    event_created_at: datetime
    event_data: dict[str, Any]


def claim_due(engine: Engine, now: datetime, limit: int, lease_seconds: float) -> list[Job]:
    """Lease up to ``limit`` due pending deliveries of enabled endpoints to this process."""
    due = (
        sa.select(DELIVERY.c.id)
        .join(ENDPOINT, ENDPOINT.c.id == DELIVERY.c.endpoint_id)
        .where(
            DELIVERY.c.status == "pending",
            DELIVERY.c.next_attempt_at <= now,
            sa.or_(DELIVERY.c.lease_until.is_(None), DELIVERY.c.lease_until < now),
            ENDPOINT.c.enabled.is_(True),
        )
        .order_by(DELIVERY.c.next_attempt_at)
        .limit(limit)
    )
    if not is_sqlite(engine):
        due = due.with_for_update(of=DELIVERY, skip_locked=True)
    lease_until = now + timedelta(seconds=lease_seconds)
    with write_session(engine) as session, session.begin():
        claimed = (
            session.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.id.in_(due.scalar_subquery()))
                .values(lease_until=lease_until)
                .returning(DELIVERY.c.id)
            )
            .scalars()
            .all()
        )
        if not claimed:
            return []
        rows = session.execute(
            sa.select(
                DELIVERY.c.id,
                DELIVERY.c.attempts,
                ENDPOINT.c.id.label("endpoint_id"),
                ENDPOINT.c.url,
                ENDPOINT.c.secret,
                ENDPOINT.c.previous_secret,
                ENDPOINT.c.previous_secret_expires_at,
                EVENT.c.id.label("event_id"),
                EVENT.c.type,
                EVENT.c.created_at,
                EVENT.c.data,
            )
            .join(ENDPOINT, ENDPOINT.c.id == DELIVERY.c.endpoint_id)
            .join(EVENT, EVENT.c.id == DELIVERY.c.event_id)
            .where(DELIVERY.c.id.in_(claimed))
        ).all()
    jobs = []
    for row in rows:
        secrets = [row.secret]
        expires = row.previous_secret_expires_at
        if row.previous_secret and expires is not None and expires > now:
            secrets.append(row.previous_secret)
        jobs.append(
            Job(
                delivery_id=row.id,
                attempts=row.attempts,
                endpoint_id=row.endpoint_id,
                url=row.url,
                secrets=tuple(secrets),
                event_id=row.event_id,
                event_type=row.type,
                event_created_at=row.created_at,
                event_data=row.data,
            )
        )
    return jobs


@dataclass(frozen=True)
class Attempt:
    """One finished attempt of a claimed delivery, with what it means for the delivery."""

    job: Job
    result: AttemptResult
    outcome: Outcome
    attempted_at: datetime


def record_batch(
    engine: Engine, attempts: Sequence[Attempt], disable_after_failing_seconds: float
) -> dict[int, str]:
    """Store ``attempts`` (in the order they finished), their deliveries' new states and their
    endpoints', all in one transaction: one statement per kind of row, not one per attempt.

    An attempt whose delivery is gone (its endpoint was deleted while it was in flight) is
    dropped. Returns the endpoints these attempts disabled, with the reason.
    """
    if not attempts:
        return {}
    ids = sorted({a.job.delivery_id for a in attempts})
    with write_session(engine) as session, session.begin():
        # The deliveries still there, locked (in id order, as every batch locks them) so that
        # no delete slips in before the attempts' inserts below.
        held = sa.select(DELIVERY.c.id).where(DELIVERY.c.id.in_(ids)).order_by(DELIVERY.c.id)
        if not is_sqlite(engine):
            held = held.with_for_update()
        present = set(session.execute(held).scalars())
        kept = [a for a in attempts if a.job.delivery_id in present]
        for gone in (a for a in attempts if a.job.delivery_id not in present):
            logger.info(
                "delivery %s: its endpoint %s was deleted during the attempt; not recorded",
                gone.job.delivery_id,
                gone.job.endpoint_id,
            )
        if not kept:
            return {}
        session.execute(sa.insert(ATTEMPT), [_attempt_row(a) for a in kept])
        session.execute(_RECORD_DELIVERY, [_delivery_params(a) for a in kept])
        return _record_endpoints(session, kept, disable_after_failing_seconds)


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    result = attempt.result
    return {
        "delivery_id": attempt.job.delivery_id,
        "attempted_at": attempt.attempted_at,
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "response_excerpt": result.response_excerpt,
    }


# One statement for every attempt of a batch (executemany): a delivery's new state. A delivery
# that is no longer pending (cancelled meanwhile by a disable) keeps its state.
_RECORD_DELIVERY = (
    sa.update(DELIVERY)
    .where(DELIVERY.c.id == sa.bindparam("b_delivery_id"), DELIVERY.c.status == "pending")
    .values(
        status=sa.bindparam("b_status"),
        attempts=DELIVERY.c.attempts + 1,
        lease_until=None,
        last_status_code=sa.bindparam("b_status_code", type_=sa.Integer()),
        next_attempt_at=sa.func.coalesce(
            sa.bindparam("b_next_attempt_at", type_=UtcDateTime()), DELIVERY.c.next_attempt_at
        ),
        delivered_at=sa.func.coalesce(
            sa.bindparam("b_delivered_at", type_=UtcDateTime()), DELIVERY.c.delivered_at
        ),
    )
)


def _delivery_params(attempt: Attempt) -> dict[str, Any]:
    outcome = attempt.outcome
    return {
        "b_delivery_id": attempt.job.delivery_id,
        "b_status": outcome.status,
        "b_status_code": attempt.result.status_code,
        "b_next_attempt_at": outcome.next_attempt_at,
        "b_delivered_at": attempt.attempted_at if outcome.succeeded else None,
    }


def _record_endpoints(
    session: Any, attempts: Sequence[Attempt], disable_after_failing_seconds: float
) -> dict[int, str]:
    """Each endpoint's run of failures (``failing_since``) after these attempts, and the
    endpoints they disable: a 410, or failing for ``disable_after_failing_seconds``.

    A success ends the run; a failure starts one if none is running. The endpoints are read
    once and written only where something changed, in id order (as every batch does, so two
    dispatchers never deadlock on them).
    """
    endpoint_ids = sorted({a.job.endpoint_id for a in attempts})
    failing: dict[int, datetime | None] = dict(
        session.execute(
            sa.select(ENDPOINT.c.id, ENDPOINT.c.failing_since).where(
                ENDPOINT.c.id.in_(endpoint_ids)
            )
        ).all()
    )
    disabled: dict[int, str] = {}
    for endpoint_id in endpoint_ids:
        if endpoint_id not in failing:
            continue
        before = since = failing[endpoint_id]
        # Why, since when and at which attempt's time it is disabled, if it is.
        disable: tuple[str, datetime, datetime] | None = None
        for attempt in (a for a in attempts if a.job.endpoint_id == endpoint_id):
            if attempt.outcome.succeeded:
                since = None
                continue
            now = attempt.attempted_at
            if since is None:
                since = now
            reason = attempt.outcome.disable_reason
            if reason is None and (now - since).total_seconds() >= disable_after_failing_seconds:
                reason = FAILING
            if reason is not None:
                disable = (reason, since, now)
                break
        if since != before:
            update = sa.update(ENDPOINT).where(ENDPOINT.c.id == endpoint_id)
            if before is None:  # another dispatcher may have started the run: its start stays
                update = update.where(ENDPOINT.c.failing_since.is_(None))
            session.execute(update.values(failing_since=since))
        if disable is not None and _disable(session, endpoint_id, *disable):
            disabled[endpoint_id] = disable[0]
    return disabled


def _disable(
    session: Any, endpoint_id: int, reason: str, failing_since: datetime, now: datetime
) -> bool:
    """Disable the endpoint, cancel its pending deliveries and tell its owner; False when it
    was disabled already (by another dispatcher's attempt, or by hand during this one)."""
    switched = session.execute(
        sa.update(ENDPOINT)
        .where(ENDPOINT.c.id == endpoint_id, ENDPOINT.c.enabled.is_(True))
        .values(
            enabled=False,
            disabled_reason=reason,
            version=ENDPOINT.c.version + 1,
            updated_at=now,
        )
    )
    if not switched.rowcount:
        return False
    # Its other pending deliveries would never be sent: they end here, and say so.
    session.execute(
        sa.update(DELIVERY)
        .where(DELIVERY.c.endpoint_id == endpoint_id, DELIVERY.c.status == "pending")
        .values(status="cancelled", lease_until=None)
    )
    # The owner's notice: an event in the endpoint's delivery log (never sent to it) ...
    event_id = session.execute(
        sa.insert(EVENT)
        .values(
            type=DISABLED_NOTICE,
            created_at=now,
            data={
                "endpoint_id": endpoint_id,
                "reason": reason,
                "failing_since": failing_since.isoformat(),
            },
        )
        .returning(EVENT.c.id)
    ).scalar_one()
    session.execute(
        sa.insert(DELIVERY).values(
            event_id=event_id,
            endpoint_id=endpoint_id,
            status="cancelled",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    # ... and sent to the owner's other enabled endpoints that subscribe to it.
    owner = session.execute(
        sa.select(ENDPOINT.c.owner_principal_id).where(ENDPOINT.c.id == endpoint_id)
    ).scalar_one()
    others = session.execute(
        sa.select(ENDPOINT.c.id, ENDPOINT.c.event_types).where(
            ENDPOINT.c.owner_principal_id == owner,
            ENDPOINT.c.id != endpoint_id,
            ENDPOINT.c.enabled.is_(True),
        )
    ).all()
    for other_id, types in others:
        if DISABLED_NOTICE in types:
            session.execute(
                sa.insert(DELIVERY).values(
                    event_id=event_id,
                    endpoint_id=other_id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    logger.warning(
        "webhook endpoint %s disabled (%s): failing since %s",
        endpoint_id,
        reason,
        failing_since.isoformat(),
        extra={"endpoint_id": endpoint_id, "disabled_reason": reason},
    )
    return True


def release(engine: Engine, delivery_ids: list[int]) -> None:
    """Give back leases this process holds but will not use (a graceful stop)."""
    if not delivery_ids:
        return
    with write_session(engine) as session, session.begin():
        session.execute(
            sa.update(DELIVERY)
            .where(DELIVERY.c.id.in_(delivery_ids), DELIVERY.c.status == "pending")
            .values(lease_until=None)
        )


def pending_depth(engine: Engine) -> tuple[int, datetime | None]:
    """How many deliveries are pending, and when the oldest of them was created."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                sa.func.count(), sa.func.min(DELIVERY.c.created_at, type_=UtcDateTime())
            ).where(DELIVERY.c.status == "pending")
        ).one()
    count, oldest = row
    return int(count), oldest


# Retention: what a delivery's status is once nothing more will happen to it.
FINISHED = ("delivered", "dead", "cancelled")


def finished_before(cutoff: datetime) -> sa.ColumnElement[bool]:
    """Deliveries that ended before ``cutoff`` and will never change again.

    No column says when a delivery ended, so each status uses a time that is never earlier
    than its end: delivered ``delivered_at``; dead its last attempt (the attempt that killed
    it is recorded with it); cancelled its endpoint's ``updated_at`` (set when the dispatcher
    disabled it and cancelled its deliveries, and only ever moved later). ``next_attempt_at``
    never exceeds the end of a delivered or dead one, so the (status, next_attempt_at) index
    narrows the search first (a cancelled one whose retry was still scheduled waits until
    that time has passed too). A pending delivery never matches.
    """
    # Aliases: the caller's query may select from these tables itself.
    later = ATTEMPT.alias("later_attempt")
    attempted_since = sa.exists().where(
        later.c.delivery_id == DELIVERY.c.id, later.c.attempted_at >= cutoff
    )
    unchanged = ENDPOINT.alias("unchanged_endpoint")
    endpoints_unchanged = sa.select(unchanged.c.id).where(unchanged.c.updated_at < cutoff)
    return sa.and_(
        DELIVERY.c.status.in_(FINISHED),
        DELIVERY.c.next_attempt_at < cutoff,
        ~attempted_since,
        sa.or_(
            sa.and_(DELIVERY.c.status == "delivered", DELIVERY.c.delivered_at < cutoff),
            DELIVERY.c.status == "dead",
            sa.and_(
                DELIVERY.c.status == "cancelled",
                DELIVERY.c.endpoint_id.in_(endpoints_unchanged),
            ),
        ),
    )


def _locked_ids(engine: Engine, query: sa.Select[Any], table: sa.Table, limit: int) -> Any:
    """Up to ``limit`` ids of ``query``; on PostgreSQL locked, skipping rows another
    dispatcher's clean-up (or a writer) holds, so two never wait for or deadlock on each
    other. SQLite's writer transaction serialises them instead."""
    # Its own table is the DELETE's: never correlated to it (a subquery of its own rows).
    query = query.limit(limit).correlate(None)
    if not is_sqlite(engine):
        query = query.with_for_update(of=table, skip_locked=True)
    return query.scalar_subquery()


def _delete(engine: Engine, table: sa.Table, ids: Any) -> int:
    with write_session(engine) as session, session.begin():
        result = session.execute(sa.delete(table).where(table.c.id.in_(ids)))
        return int(getattr(result, "rowcount", 0) or 0)


def remove_finished_attempts(engine: Engine, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` attempts of deliveries that finished before ``cutoff``."""
    query = (
        sa.select(ATTEMPT.c.id)
        .join(DELIVERY, DELIVERY.c.id == ATTEMPT.c.delivery_id)
        .where(finished_before(cutoff))
    )
    return _delete(engine, ATTEMPT, _locked_ids(engine, query, ATTEMPT, limit))


def remove_finished_deliveries(engine: Engine, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` deliveries that finished before ``cutoff`` and whose attempts
    are gone already (so that the cascade never deletes more rows than the limit)."""
    has_attempts = sa.exists().where(ATTEMPT.c.delivery_id == DELIVERY.c.id)
    query = sa.select(DELIVERY.c.id).where(finished_before(cutoff), ~has_attempts)
    return _delete(engine, DELIVERY, _locked_ids(engine, query, DELIVERY, limit))


def remove_old_events(engine: Engine, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` events created before ``cutoff`` that no delivery refers to:
    an event with a pending delivery (or one kept for its own retention) stays."""
    referred = sa.exists().where(DELIVERY.c.event_id == EVENT.c.id)
    query = sa.select(EVENT.c.id).where(EVENT.c.created_at < cutoff, ~referred)
    return _delete(engine, EVENT, _locked_ids(engine, query, EVENT, limit))


def remove_finished_scans(engine: Engine, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` proactive-matching scans that ended (done or superseded) before
    ``cutoff``; a pending scan stays whatever its age."""
    query = sa.select(SCAN.c.id).where(
        SCAN.c.status != "pending", SCAN.c.finished_at.is_not(None), SCAN.c.finished_at < cutoff
    )
    return _delete(engine, SCAN, _locked_ids(engine, query, SCAN, limit))


# Children first: a delivery goes once its attempts are gone, an event once no delivery is left.
RetentionStep = Callable[[Engine, datetime, int], int]
RETENTION_STEPS: tuple[tuple[str, RetentionStep], ...] = (
    ("webhook_attempt", remove_finished_attempts),
    ("webhook_delivery", remove_finished_deliveries),
    ("outbox_event", remove_old_events),
    ("match_scan", remove_finished_scans),
)


def remove_expired(engine: Engine, cutoff: datetime, limit: int) -> dict[str, int]:
    """One whole retention pass in batches of ``limit``: the rows deleted, per table."""
    removed = dict.fromkeys((table for table, _step in RETENTION_STEPS), 0)
    for table, step in RETENTION_STEPS:
        while True:
            count = step(engine, cutoff, limit)
            removed[table] += count
            if count < limit:
                break
    return removed
