"""What every drill asserts about the answers its traffic recorded, and about the database."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import psycopg

from tests.drills.traffic import Answer

RECOVERY_SECONDS = 5.0
T = TypeVar("T")


def summary(answers: Iterable[Answer]) -> str:
    """Counts by kind and status, for failure messages."""
    counts = Counter((a.kind, a.status) for a in answers)
    return ", ".join(
        f"{kind} {status}: {n}" for (kind, status), n in sorted(counts.items(), key=str)
    )


def assert_no_5xx_but_503_with_retry_after(answers: list[Answer]) -> None:
    """Every answer is an HTTP answer, and a 5xx only as 503 with Retry-After."""
    bad = [
        a
        for a in answers
        if a.status is None or (a.status >= 500 and not (a.status == 503 and a.retry_after))
    ]
    shown = "\n".join(a.describe() for a in bad[:5])
    assert not bad, f"{len(bad)} answers neither below 500 nor 503 with Retry-After:\n{shown}\n" + (
        summary(answers)
    )


def recovery_seconds(
    answers: list[Answer], back_at: float, fresh: Callable[[Answer], bool]
) -> float | None:
    """Seconds from ``back_at`` to the first fresh success answered after it."""
    ended = [a.ended for a in answers if a.ended >= back_at and a.ok and fresh(a)]
    return min(ended) - back_at if ended else None


def assert_recovered(
    answers: list[Answer], back_at: float, fresh: Callable[[Answer], bool], what: str
) -> float:
    seconds = recovery_seconds(answers, back_at, fresh)
    after = [a for a in answers if a.started >= back_at]
    refused = [a for a in after if not a.ok]
    last = f"; the last refusal: {refused[-1].describe()}" if refused else ""
    assert seconds is not None, f"no {what} after the dependency came back: {summary(after)}{last}"
    assert seconds <= RECOVERY_SECONDS, (
        f"first {what} {seconds:.1f} s after the dependency came back (at most "
        f"{RECOVERY_SECONDS:.0f} s); answers since: {summary(after)}{last}"
    )
    return seconds


def needs_registry(answer: Answer) -> bool:
    """Answers that only the registry (and so the database) can give now: writes, and firm
    reads that are not an earlier copy served stale."""
    return answer.kind in {"create_firm", "apply", "get_firm"} and answer.stale is None


def fresh_matches(answer: Answer) -> bool:
    """Matches ranked by the matching service now, not an earlier answer served stale."""
    body = answer.json()
    return (
        answer.kind == "matches"
        and answer.stale is None
        and isinstance(body, dict)
        and not body.get("stale")
        and not body.get("degraded")
    )


def assert_writes_exactly_once(answers: list[Answer], database_url: str) -> dict[str, int]:
    """Every acknowledged write is in the database exactly once, as the id it was answered
    with; the repeats of one Idempotency-Key answered one id; nothing is there twice.
    Returns how many writes of each kind were acknowledged (so a drill can see it wrote)."""
    ids_by_key: dict[str, set[int]] = defaultdict(set)
    acknowledged: dict[str, dict[str, int]] = {"create_firm": {}, "apply": {}}
    for answer in answers:
        created = answer.created_id()
        if answer.key is None or answer.target is None or created is None:
            continue
        ids_by_key[answer.key].add(created)
        acknowledged[answer.kind][answer.target] = created
    split = {key: ids for key, ids in ids_by_key.items() if len(ids) > 1}
    assert not split, f"one Idempotency-Key answered with several records: {split}"

    firms = acknowledged["create_firm"]
    applications = acknowledged["apply"]
    with psycopg.connect(database_url) as conn:
        stored_firms = conn.execute(
            "SELECT credit_code, array_agg(id) FROM firm WHERE credit_code = ANY(%s) "
            "GROUP BY credit_code",
            (list(firms),),
        ).fetchall()
        stored_applications = conn.execute(
            "SELECT firm_id || ':' || product_id, array_agg(id) FROM application "
            "GROUP BY firm_id, product_id"
        ).fetchall()
        twice = conn.execute(
            "SELECT credit_code, count(*) FROM firm GROUP BY credit_code HAVING count(*) > 1"
        ).fetchall()
    firm_rows = {code: sorted(ids) for code, ids in stored_firms}
    application_rows = {pair: sorted(ids) for pair, ids in stored_applications}
    assert not twice, f"firms stored twice: {twice}"
    doubled = {pair: ids for pair, ids in application_rows.items() if len(ids) > 1}
    assert not doubled, f"applications stored twice for one firm and product: {doubled}"
    wrong_firms = {c: (i, firm_rows.get(c)) for c, i in firms.items() if firm_rows.get(c) != [i]}
    assert not wrong_firms, f"acknowledged firms not stored once as answered: {wrong_firms}"
    wrong_applications = {
        p: (i, application_rows.get(p))
        for p, i in applications.items()
        if application_rows.get(p) != [i]
    }
    assert not wrong_applications, (
        f"acknowledged applications not stored once as answered: {wrong_applications}"
    )
    return {kind: len(targets) for kind, targets in acknowledged.items()}


class Verdicts:
    """Runs every check and fails once with all that failed, so a drill reports each finding."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def check(self, check: Callable[..., T], *args: Any) -> T | None:
        try:
            return check(*args)
        except AssertionError as exc:
            self.failures.append(f"{check.__name__}: {exc}")
            return None

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.failures.append(message)

    def assert_all(self) -> None:
        assert not self.failures, "\n\n".join(self.failures)
