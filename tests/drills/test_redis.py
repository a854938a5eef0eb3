"""Drill: Redis is SIGKILLed under traffic and started again (empty: it keeps nothing on disk)."""

from __future__ import annotations

import time

import pytest
import redis

from tests.drills import checks
from tests.drills.conftest import Drill
from tests.drills.traffic import Traffic
from tests.e2e.cluster import REDIS_PREFIX

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


# The gateway's three stores in Redis, by the start of their keys (all under its prefix).
STORES = {"rate limiter": "rl:", "idempotency": "idem:", "cache": ""}


def store_of(key: str) -> str:
    rest = key.removeprefix(REDIS_PREFIX)
    return next(store for store, start in STORES.items() if rest.startswith(start))


def seconds_until_each_store_writes(
    redis_url: str, since: float, timeout: float
) -> dict[str, float | None]:
    """Seconds from ``since`` until each of the gateway's stores has written to Redis again."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    seen: dict[str, float | None] = dict.fromkeys(STORES)
    try:
        while None in seen.values() and time.monotonic() < since + timeout:
            for key in client.scan_iter(match=f"{REDIS_PREFIX}*", count=1_000):
                store = store_of(key)
                if seen[store] is None:
                    seen[store] = time.monotonic() - since
            time.sleep(0.05)
    finally:
        client.close()
    return seen


def test_redis_killed_and_restarted_under_traffic(drill: Drill) -> None:
    with Traffic(drill.world) as traffic:
        traffic.run_past(time.monotonic(), answers=20)
        drill.redis.kill()
        traffic.run_past(time.monotonic(), answers=30)
        drill.redis.start()  # returns once it answers PING
        back_at = time.monotonic()
        reused_after = seconds_until_each_store_writes(drill.redis.url, back_at, timeout=30)
        traffic.run_past(back_at + checks.RECOVERY_SECONDS + 1, answers=10)
    answers = traffic.answers

    verdicts = checks.Verdicts()
    verdicts.check(checks.assert_no_5xx_but_503_with_retry_after, answers)
    recovered = verdicts.check(
        checks.assert_recovered, answers, back_at, checks.needs_registry, "write or firm read"
    )
    print(
        f"first write or firm read {recovered} s after Redis was back; the gateway's stores "
        f"wrote to it again after (s) {reused_after}; {checks.summary(answers)}"
    )
    written = verdicts.check(checks.assert_writes_exactly_once, answers, drill.database_url)
    verdicts.expect(bool(written) and all(written.values()), f"writes acknowledged: {written}")
    late = {
        store: seconds
        for store, seconds in reused_after.items()
        if seconds is None or seconds > checks.RECOVERY_SECONDS
    }
    verdicts.expect(
        not late,
        f"stores of the gateway that used Redis again more than {checks.RECOVERY_SECONDS:.0f} s "
        f"after its return (seconds; None: not within 30 s): {late}",
    )
    verdicts.assert_all()
