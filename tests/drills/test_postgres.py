"""Drill: PostgreSQL stopped (fast), started, then restarted, all under traffic."""

from __future__ import annotations

import time

import pytest

from tests.drills import checks
from tests.drills.conftest import Drill
from tests.drills.traffic import Traffic

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_postgres_stopped_started_and_restarted_under_traffic(drill: Drill) -> None:
    with Traffic(drill.world) as traffic:
        traffic.run_past(time.monotonic(), answers=20)
        drill.postgres.stop("fast")
        traffic.run_past(time.monotonic(), answers=30)
        drill.postgres.start()  # pg_ctl -w: returns once it accepts connections
        started_at = time.monotonic()
        traffic.run_until_fresh(started_at, checks.needs_registry)
        traffic.run_past(started_at + checks.RECOVERY_SECONDS + 1, answers=10)
        drill.postgres.restart()
        restarted_at = time.monotonic()
        traffic.run_until_fresh(restarted_at, checks.needs_registry)
        traffic.run_past(restarted_at + checks.RECOVERY_SECONDS + 1, answers=10)
    answers = traffic.answers

    verdicts = checks.Verdicts()
    verdicts.check(checks.assert_no_5xx_but_503_with_retry_after, answers)
    for back_at, what in ((started_at, "start"), (restarted_at, "restart")):
        seconds = checks.recovery_seconds(answers, back_at, checks.needs_registry)
        print(f"after the {what}: first write or firm read {seconds} s later")
        verdicts.check(
            checks.assert_recovered,
            answers,
            back_at,
            checks.needs_registry,
            f"write or firm read after the {what}",
        )
    written = verdicts.check(checks.assert_writes_exactly_once, answers, drill.database_url)
    verdicts.expect(bool(written) and all(written.values()), f"writes acknowledged: {written}")
    verdicts.assert_all()
