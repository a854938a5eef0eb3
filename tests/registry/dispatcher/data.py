"""Rows for dispatcher tests: a principal's endpoint, events with their deliveries, and reads."""

from __future__ import annotations

import asyncio
import base64
import secrets as random_secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry.config import RegistrySettings
from services.registry.dispatcher.loop import Dispatcher
from services.registry.dispatcher.store import ATTEMPT, DELIVERY, ENDPOINT, EVENT
from services.registry.models.access import Principal
from services.registry.models.columns import table_of
from shared.schemas.webhooks import webhook_id
from tests.polling import until

PRINCIPAL = table_of(Principal)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(random_secrets.token_bytes(24)).decode()


def add_endpoint(engine: Engine, url: str, **values: Any) -> tuple[int, str]:
    """An endpoint (enabled unless ``values`` say otherwise) of a new portal principal; its
    id and secret."""
    secret = values.pop("secret", None) or new_secret()
    with engine.begin() as conn:
        principal_id = conn.execute(
            sa.insert(PRINCIPAL).values(role="portal", name="portal").returning(PRINCIPAL.c.id)
        ).scalar_one()
        endpoint_id = conn.execute(
            sa.insert(ENDPOINT)
            .values(
                {
                    "owner_principal_id": principal_id,
                    "url": url,
                    "event_types": ["application.submitted"],
                    "description": "",
                    "enabled": True,
                    "secret": secret,
                    "version": 1,
                    **values,
                }
            )
            .returning(ENDPOINT.c.id)
        ).scalar_one()
    return endpoint_id, secret


def add_deliveries(engine: Engine, endpoint_id: int, count: int = 1) -> list[int]:
    """``count`` application.submitted events, each with a pending delivery due now."""
    now = datetime.now(UTC)
    ids = []
    with engine.begin() as conn:
        for n in range(count):
            event_id = conn.execute(
                sa.insert(EVENT)
                .values(type="application.submitted", created_at=now, data={"seq": n})
                .returning(EVENT.c.id)
            ).scalar_one()
            ids.append(
                conn.execute(
                    sa.insert(DELIVERY)
                    .values(
                        event_id=event_id,
                        endpoint_id=endpoint_id,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                    .returning(DELIVERY.c.id)
                ).scalar_one()
            )
    return ids


def delivery(engine: Engine, delivery_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(DELIVERY).where(DELIVERY.c.id == delivery_id)).one()


def endpoint(engine: Engine, endpoint_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(ENDPOINT).where(ENDPOINT.c.id == endpoint_id)).one()


def attempts(engine: Engine, delivery_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(ATTEMPT)
                .where(ATTEMPT.c.delivery_id == delivery_id)
                .order_by(ATTEMPT.c.id)
            )
        )


def statuses(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(DELIVERY.c.id, DELIVERY.c.status)).all())


def settings_for(engine: Engine, **overrides: Any) -> RegistrySettings:
    """Fast settings for tests: short polls and a short schedule, loopback targets allowed."""
    values: dict[str, Any] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "environment": "test",
        "webhook_allow_private": True,
        "dispatcher_poll_seconds": 0.02,
        "dispatcher_lease_seconds": 30.0,
        "webhook_retry_schedule_seconds": (0.05, 0.05, 0.05, 0.05),
        "webhook_retry_jitter": 0.0,
        "dispatcher_metrics_port": 0,
    }
    values.update(overrides)
    return RegistrySettings(**values)


def run_until(
    engine: Engine,
    settings: RegistrySettings,
    condition: Callable[[], object],
    timeout: float = 20.0,
    **options: Any,
) -> None:
    """Run a dispatcher in this process until ``condition()`` holds, then stop it gracefully."""

    async def main() -> None:
        stop = asyncio.Event()
        dispatcher = Dispatcher(engine, settings, **options)
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            await until(lambda: task.done() or condition(), timeout)
        finally:
            stop.set()
            await task

    asyncio.run(main())


def webhook_ids(engine: Engine, delivery_ids: list[int]) -> list[str]:
    """The webhook-id each delivery is sent under."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DELIVERY.c.id, DELIVERY.c.event_id, DELIVERY.c.endpoint_id).where(
                DELIVERY.c.id.in_(delivery_ids)
            )
        ).all()
    by_id = {row.id: webhook_id(row.event_id, row.endpoint_id) for row in rows}
    return [by_id[i] for i in delivery_ids]
