"""The dispatcher as a process: killed mid-batch, two side by side, stopped with SIGTERM."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.polling import wait_until
from tests.registry.dispatcher.data import add_deliveries, add_endpoint, statuses, webhook_ids
from tests.registry.dispatcher.receiver import Receiver, serve
from tests.registry.dispatcher.tls import issue, make_authority
from tests.services import _free_port

REPO = Path(__file__).resolve().parents[3]


def dispatcher_env(engine: Engine, **settings: Any) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FINMATCH_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "FINMATCH_ENVIRONMENT": "test",
        "FINMATCH_WEBHOOK_ALLOW_PRIVATE": "1",
        "FINMATCH_DISPATCHER_POLL_SECONDS": "0.02",
        "FINMATCH_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0.05, 0.05, 0.05]",
        "FINMATCH_WEBHOOK_RETRY_JITTER": "0",
        "FINMATCH_DISPATCHER_METRICS_PORT": "0",
        "FINMATCH_LOG_FORMAT": "text",
        "FINMATCH_LOG_LEVEL": "WARNING",
    }
    env.update({f"FINMATCH_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@contextmanager
def dispatcher(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.registry.dispatcher"], env=env, cwd=REPO
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def all_done(engine: Engine) -> bool:
    return all(status == "delivered" for status in statuses(engine).values())


def received_sequence_numbers(receiver: Receiver) -> set[int]:
    return {json.loads(r.body)["data"]["seq"] for r in receiver.received}


def test_sigkill_mid_batch_then_restart_loses_nothing(engine: Engine) -> None:
    count, concurrency = 120, 8
    with serve(Receiver(secrets=[], delay=0.05)) as receiver:
        endpoint_id, secret = add_endpoint(engine, receiver.url)
        receiver.secrets.append(secret)
        ids = add_deliveries(engine, endpoint_id, count)
        env = dispatcher_env(
            engine,
            dispatcher_concurrency=concurrency,
            dispatcher_batch_size=concurrency,
            dispatcher_lease_seconds=1,
        )
        with dispatcher(env) as first:
            wait_until(lambda: len(receiver.received) >= count // 3, timeout=60)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        assert not all_done(engine)
        with dispatcher(env):
            wait_until(lambda: all_done(engine), timeout=120)
    # Every event reached the receiver, signed, under its delivery's webhook-id.
    assert received_sequence_numbers(receiver) == set(range(count))
    assert set(receiver.delivered_ids()) == set(webhook_ids(engine, ids))
    assert all(r.verified for r in receiver.received)
    # Only what was in flight at the kill came twice.
    repeats = [n for n in collections.Counter(receiver.delivered_ids()).values() if n > 1]
    assert len(repeats) <= concurrency
    assert all(n == 2 for n in repeats)


def test_two_dispatchers_never_send_an_attempt_twice(engine: Engine) -> None:
    count = 300
    with serve(Receiver(secrets=[], delay=0.01)) as receiver:
        endpoint_id, secret = add_endpoint(engine, receiver.url)
        receiver.secrets.append(secret)
        ids = add_deliveries(engine, endpoint_id, count)
        env = dispatcher_env(engine, dispatcher_concurrency=16, dispatcher_batch_size=8)
        with dispatcher(env) as one, dispatcher(env) as two:
            wait_until(lambda: all_done(engine), timeout=120)
            assert one.poll() is None
            assert two.poll() is None
    got = [r.webhook_id for r in receiver.received]
    assert sorted(got) == sorted(webhook_ids(engine, ids))
    with engine.connect() as conn:
        attempts = conn.execute(sa.text("SELECT count(*) FROM webhook_attempt")).scalar_one()
    assert attempts == count


def test_sigterm_finishes_the_sends_in_flight_and_metrics_are_served(engine: Engine) -> None:
    metrics_port = _free_port()
    with serve(Receiver(secrets=[], delay=3.0)) as receiver:
        endpoint_id, secret = add_endpoint(engine, receiver.url)
        receiver.secrets.append(secret)
        add_deliveries(engine, endpoint_id, 4)
        env = dispatcher_env(engine, dispatcher_metrics_port=metrics_port, dispatcher_concurrency=4)
        with dispatcher(env) as process:
            wait_until(lambda: len(receiver.received) == 4, timeout=30)
            scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            assert "finmatch_webhook_outbox_pending 4.0" in scrape
            assert "finmatch_webhook_oldest_pending_age_seconds" in scrape
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    # The four answers came after the signal; each was waited for and recorded.
    assert statuses(engine) == dict.fromkeys(statuses(engine), "delivered")
    with engine.connect() as conn:
        leased = conn.execute(
            sa.text("SELECT count(*) FROM webhook_delivery WHERE lease_until IS NOT NULL")
        ).scalar_one()
    assert leased == 0


def test_the_process_delivers_over_https_trusting_the_ca_bundle(
    engine: Engine, tmp_path: Path
) -> None:
    authority = make_authority(tmp_path)
    certificate = issue(authority, "localhost", tmp_path)
    with serve(Receiver(secrets=[]), tls=certificate) as receiver:
        assert receiver.url.startswith("https://localhost:")
        endpoint_id, secret = add_endpoint(engine, receiver.url)
        receiver.secrets.append(secret)
        ids = add_deliveries(engine, endpoint_id, 3)
        env = dispatcher_env(engine, webhook_ca_bundle=authority.pem_file)
        with dispatcher(env):
            wait_until(lambda: all_done(engine), timeout=60)
    assert sorted(receiver.delivered_ids()) == sorted(webhook_ids(engine, ids))
    assert all(r.verified for r in receiver.received)
    assert {r.server[0] for r in receiver.received if r.server} == {"127.0.0.1"}
