"""Drill: the matching service is SIGKILLed under traffic and started again."""

from __future__ import annotations

import time

import pytest

from tests.drills import checks
from tests.drills.conftest import Drill
from tests.drills.traffic import Traffic

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_matching_killed_and_restarted_under_traffic(drill: Drill) -> None:
    with Traffic(drill.world) as traffic:
        traffic.run_past(time.monotonic(), answers=20)
        drill.cluster.services["matching"].kill()
        killed_at = time.monotonic()
        traffic.run_past(time.monotonic(), answers=30)
        drill.cluster.restart("matching").wait_ready()
        back_at = time.monotonic()
        traffic.run_until_fresh(back_at, checks.fresh_matches)
        traffic.run_past(back_at + checks.RECOVERY_SECONDS + 1, answers=10)
    answers = traffic.answers

    verdicts = checks.Verdicts()
    verdicts.check(checks.assert_no_5xx_but_503_with_retry_after, answers)
    recovered = verdicts.check(
        checks.assert_recovered, answers, back_at, checks.fresh_matches, "freshly ranked matches"
    )
    print(
        f"matching back at {back_at - killed_at:.1f} s after the kill; fresh matches "
        f"{recovered} s later; {checks.summary(answers)}"
    )
    written = verdicts.check(checks.assert_writes_exactly_once, answers, drill.database_url)
    verdicts.expect(bool(written) and all(written.values()), f"writes acknowledged: {written}")
    verdicts.assert_all()
