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


def seconds_until_gateway_writes(redis_url: str, since: float, timeout: float) -> float | None:
    """Seconds from ``since`` until a key of the gateway's is in Redis (it uses Redis again)."""
    client = redis.Redis.from_url(redis_url)
    deadline = since + timeout
    try:
        while time.monotonic() < deadline:
            if next(client.scan_iter(match=f"{REDIS_PREFIX}*", count=1_000), None) is not None:
                return time.monotonic() - since
            time.sleep(0.05)
    finally:
        client.close()
    return None


def test_redis_killed_and_restarted_under_traffic(drill: Drill) -> None:
    with Traffic(drill.world) as traffic:
        traffic.run_past(time.monotonic(), answers=20)
        drill.redis.kill()
        traffic.run_past(time.monotonic(), answers=30)
        drill.redis.start()  # returns once it answers PING
        back_at = time.monotonic()
        reused_after = seconds_until_gateway_writes(drill.redis.url, back_at, timeout=30)
        traffic.run_past(back_at + checks.RECOVERY_SECONDS + 1, answers=10)
    answers = traffic.answers

    verdicts = checks.Verdicts()
    verdicts.check(checks.assert_no_5xx_but_503_with_retry_after, answers)
    recovered = verdicts.check(
        checks.assert_recovered, answers, back_at, checks.needs_registry, "write or firm read"
    )
    print(
        f"first write or firm read {recovered} s after Redis was back; the gateway wrote to "
        f"it again after {reused_after} s; {checks.summary(answers)}"
    )
    written = verdicts.check(checks.assert_writes_exactly_once, answers, drill.database_url)
    verdicts.expect(bool(written) and all(written.values()), f"writes acknowledged: {written}")
    verdicts.expect(
        reused_after is not None and reused_after <= checks.RECOVERY_SECONDS,
        f"the gateway used Redis again {reused_after} s after its return (at most "
        f"{checks.RECOVERY_SECONDS:.0f} s; None: not within 30 s)",
    )
    verdicts.assert_all()
