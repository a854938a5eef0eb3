"""The outbox's retention: finished deliveries, their attempts and unreferenced events expire;
nothing pending ever does."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.registry.dispatcher import store
from services.registry.dispatcher.loop import Dispatcher
from services.registry.dispatcher.store import ATTEMPT, DELIVERY, ENDPOINT, EVENT
from services.registry.models import Institution, MatchScan, Product
from tests.polling import until
from tests.registry import data
from tests.registry.dispatcher.data import add_endpoint, settings_for

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
RETENTION_DAYS = 30
CUTOFF = NOW - timedelta(days=RETENTION_DAYS)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def add_event(engine: Engine, created: datetime) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(EVENT)
                .values(type="application.submitted", created_at=created, data={})
                .returning(EVENT.c.id)
            ).scalar_one()
        )


def add_delivery(
    engine: Engine,
    endpoint_id: int,
    event_id: int,
    status: str,
    *,
    created: datetime,
    attempted: list[datetime],
    delivered: datetime | None = None,
) -> int:
    """A delivery with one attempt at each time of ``attempted``; due at the last of them."""
    due = attempted[-1] if attempted else created
    with engine.begin() as conn:
        delivery_id = int(
            conn.execute(
                sa.insert(DELIVERY)
                .values(
                    event_id=event_id,
                    endpoint_id=endpoint_id,
                    status=status,
                    attempts=len(attempted),
                    next_attempt_at=due,
                    created_at=created,
                    delivered_at=delivered,
                )
                .returning(DELIVERY.c.id)
            ).scalar_one()
        )
        if attempted:
            conn.execute(
                sa.insert(ATTEMPT),
                [
                    {"delivery_id": delivery_id, "attempted_at": at, "latency_ms": 1}
                    for at in attempted
                ],
            )
    return delivery_id


def ids(engine: Engine, table: sa.Table) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(table.c.id)).scalars())


def attempt_owners(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(ATTEMPT.c.delivery_id)).scalars())


def endpoint_updated(engine: Engine, endpoint_id: int, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(ENDPOINT).where(ENDPOINT.c.id == endpoint_id).values(updated_at=at))


class World:
    """Every case at once: what must go and what must stay, relative to NOW."""

    def __init__(self, engine: Engine) -> None:
        endpoint, _ = add_endpoint(engine, "https://receiver.example/hook")
        disabled_long_ago, _ = add_endpoint(engine, "https://old.example/hook", enabled=False)
        disabled_lately, _ = add_endpoint(engine, "https://new.example/hook", enabled=False)
        endpoint_updated(engine, endpoint, days_ago(90))
        endpoint_updated(engine, disabled_long_ago, days_ago(40))
        endpoint_updated(engine, disabled_lately, days_ago(5))

        def event(age: float) -> int:
            return add_event(engine, days_ago(age))

        def finished(status: str, age: float, **kw: Any) -> int:
            when = days_ago(age)
            delivered = when if status == "delivered" else None
            return add_delivery(
                engine,
                kw.pop("endpoint_id", endpoint),
                kw.pop("event_id", None) or event(age + 1),
                status,
                created=kw.pop("created", days_ago(age + 1)),
                attempted=kw.pop("attempted", [days_ago(age + 0.5), when]),
                delivered=delivered,
            )

        self.old_delivered = finished("delivered", 40)
        self.old_dead = finished("dead", 31)
        self.recent_delivered = finished("delivered", 10)
        # Created long ago, but its last attempt (the one that killed it) is recent.
        self.recently_dead = finished(
            "dead", 29, created=days_ago(45), attempted=[days_ago(44), days_ago(29)]
        )
        self.old_cancelled = finished("cancelled", 45, endpoint_id=disabled_long_ago)
        # Cancelled when its endpoint was disabled 5 days ago: its own times tell nothing.
        self.lately_cancelled = finished("cancelled", 45, endpoint_id=disabled_lately)
        # Pending for 60 days (its endpoint paused), attempts long ago: never removed.
        self.shared_event = event(60)
        self.old_pending = add_delivery(
            engine,
            disabled_lately,
            self.shared_event,
            "pending",
            created=days_ago(60),
            attempted=[days_ago(59)],
        )
        # Its sibling to another endpoint expired; the event stays for the pending one.
        self.sibling_delivered = finished("delivered", 50, event_id=self.shared_event)
        self.old_unreferenced_event = event(31)
        self.recent_unreferenced_event = event(29)

        self.expired_deliveries = {self.old_delivered, self.old_dead, self.old_cancelled}
        self.expired_deliveries.add(self.sibling_delivered)
        self.kept_deliveries = {
            self.recent_delivered,
            self.recently_dead,
            self.lately_cancelled,
            self.old_pending,
        }


def event_of(engine: Engine, delivery_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(DELIVERY.c.event_id).where(DELIVERY.c.id == delivery_id)
            ).scalar_one()
        )


def test_retention_removes_what_ended_and_keeps_what_is_pending_or_recent(
    engine: Engine,
) -> None:
    world = World(engine)
    expired_events = {event_of(engine, d) for d in world.expired_deliveries} - {world.shared_event}
    expired_events.add(world.old_unreferenced_event)
    kept_events = {event_of(engine, d) for d in world.kept_deliveries}
    kept_events.add(world.recent_unreferenced_event)
    attempts_before = attempt_owners(engine)

    removed = store.remove_expired(engine, CUTOFF, limit=1_000)

    assert ids(engine, DELIVERY) == world.kept_deliveries
    assert attempt_owners(engine) == attempts_before - world.expired_deliveries
    assert ids(engine, EVENT) == kept_events
    assert kept_events.isdisjoint(expired_events)
    assert removed == {
        "webhook_attempt": 2 * len(world.expired_deliveries),
        "webhook_delivery": len(world.expired_deliveries),
        "outbox_event": len(expired_events),
        "match_scan": 0,
    }
    # A second pass finds nothing more.
    assert sum(store.remove_expired(engine, CUTOFF, limit=1_000).values()) == 0


def test_each_statement_deletes_at_most_the_batch_size(engine: Engine) -> None:
    endpoint, _ = add_endpoint(engine, "https://receiver.example/hook")
    for _ in range(5):
        add_delivery(
            engine,
            endpoint,
            add_event(engine, days_ago(41)),
            "delivered",
            created=days_ago(41),
            attempted=[days_ago(40.5), days_ago(40)],
            delivered=days_ago(40),
        )
    # Deliveries wait for their attempts to go first: the cascade never adds rows.
    assert store.remove_finished_deliveries(engine, CUTOFF, 3) == 0
    assert store.remove_finished_attempts(engine, CUTOFF, 3) == 3
    assert store.remove_old_events(engine, CUTOFF, 3) == 0  # all still referred to
    assert store.remove_expired(engine, CUTOFF, limit=3) == {
        "webhook_attempt": 7,
        "webhook_delivery": 5,
        "outbox_event": 5,
        "match_scan": 0,
    }
    assert ids(engine, DELIVERY) == set()
    assert ids(engine, EVENT) == set()


def test_two_clean_ups_at_once_remove_everything_once(engine: Engine) -> None:
    endpoint, _ = add_endpoint(engine, "https://receiver.example/hook")
    count = 300
    with engine.begin() as conn:
        event_ids = conn.execute(
            sa.insert(EVENT).returning(EVENT.c.id),
            [
                {"type": "application.submitted", "created_at": days_ago(41), "data": {}}
                for _ in range(count)
            ],
        ).scalars()
        rows = [
            {
                "event_id": event_id,
                "endpoint_id": endpoint,
                "status": "pending" if n % 10 == 0 else "delivered",
                "attempts": 1,
                "next_attempt_at": days_ago(40),
                "created_at": days_ago(41),
                "delivered_at": None if n % 10 == 0 else days_ago(40),
            }
            for n, event_id in enumerate(event_ids)
        ]
        conn.execute(sa.insert(DELIVERY), rows)
        delivery_ids = conn.execute(sa.select(DELIVERY.c.id)).scalars().all()
        conn.execute(
            sa.insert(ATTEMPT),
            [
                {"delivery_id": d, "attempted_at": days_ago(40), "latency_ms": 1}
                for d in delivery_ids
            ],
        )
    pending = {d for d, s in _statuses(engine).items() if s == "pending"}
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def clean() -> None:
        try:
            results.append(store.remove_expired(engine, CUTOFF, limit=25))
        except BaseException as exc:  # reported below, with the other thread's result
            errors.append(exc)

    threads = [threading.Thread(target=clean) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    expired = count - len(pending)
    totals = {table: sum(r[table] for r in results) for table in results[0]}
    assert totals == {
        "webhook_attempt": expired,
        "webhook_delivery": expired,
        "outbox_event": expired,
        "match_scan": 0,
    }
    assert ids(engine, DELIVERY) == pending
    assert attempt_owners(engine) == pending
    assert len(ids(engine, EVENT)) == len(pending)


def _statuses(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(DELIVERY.c.id, DELIVERY.c.status)).all())


def removed_metric(table: str) -> float:
    value = REGISTRY.get_sample_value("finmatch_webhook_retention_removed_total", {"table": table})
    return value or 0.0


def test_the_dispatcher_cleans_up_at_start_and_counts_what_it_removed(engine: Engine) -> None:
    world = World(engine)
    before = {t: removed_metric(t) for t, _ in store.RETENTION_STEPS}
    settings = settings_for(engine, webhook_retention_days=RETENTION_DAYS)

    async def main() -> None:
        stop = asyncio.Event()
        dispatcher = Dispatcher(engine, settings, clock=lambda: NOW)
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            await until(lambda: ids(engine, DELIVERY) == world.kept_deliveries, timeout=20)
            await until(lambda: dispatcher.cleanup is not None and dispatcher.cleanup.done())
        finally:
            stop.set()
            await task

    asyncio.run(main())
    after = {t: removed_metric(t) - before[t] for t, _ in store.RETENTION_STEPS}
    assert after["webhook_delivery"] == len(world.expired_deliveries)
    assert after["webhook_attempt"] == 2 * len(world.expired_deliveries)
    assert after["outbox_event"] == len(world.expired_deliveries)  # 3 own + 1 unreferenced
    assert world.old_pending in ids(engine, DELIVERY)


def test_an_event_being_redelivered_is_skipped_not_waited_for(engine: Engine) -> None:
    """A redelivery holds its event (FOR KEY SHARE) until its new delivery is committed; the
    clean-up passes it by instead of deleting it from under that delivery or waiting."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite serialises writers)")
    held = add_event(engine, days_ago(40))
    add_event(engine, days_ago(40))  # free: removed at once
    with engine.connect() as conn, conn.begin():
        conn.execute(
            sa.select(EVENT.c.id)
            .where(EVENT.c.id == held)
            .with_for_update(key_share=True, read=True)
        )
        assert store.remove_old_events(engine, CUTOFF, 10) == 1
        assert ids(engine, EVENT) == {held}
    assert store.remove_old_events(engine, CUTOFF, 10) == 1
    assert ids(engine, EVENT) == set()


def test_finished_scans_go_after_the_retention_and_pending_ones_stay(engine: Engine) -> None:
    with Session(engine) as session:
        institution = Institution(name="留存测试银行", kind="bank")
        session.add(institution)
        session.flush()
        product = Product(**data.product(), institution_id=institution.id)
        session.add(product)
        session.flush()
        assert product.id is not None
        for status, finished in (
            ("done", days_ago(40)),
            ("superseded", days_ago(40)),
            ("done", days_ago(1)),
            ("pending", None),
        ):
            session.add(
                MatchScan(
                    product_id=product.id,
                    product_version=1,
                    after={},
                    status=status,
                    created_at=days_ago(60),
                    finished_at=finished,
                )
            )
        session.commit()
    removed = store.remove_expired(engine, CUTOFF, limit=1)
    assert removed["match_scan"] == 2
    with Session(engine) as session:
        left = sorted(s.status for s in session.exec(select(MatchScan)))
    assert left == ["done", "pending"]
