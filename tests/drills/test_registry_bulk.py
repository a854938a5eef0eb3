"""Drill: the registry is SIGKILLed during a 10,000-line bulk import, which is then sent again.

The import commits batch by batch; sent again with the same import_id it skips the batches
that were committed and writes the rest, so every firm of the file is there exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import psycopg
import pytest

from tests.drills import checks
from tests.drills.conftest import Drill
from tests.registry import data

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

LINES, BATCH = 10_000, 500
BATCHES = LINES // BATCH
IMPORT_ID = "drill-bulk-1"
SEQ = 80_000_000  # credit codes clear of the pool's and the traffic's
CHUNK_LINES = 250
# The upload is paced (as a client reading a file over a slow link would be), so that the
# kill lands while batches are still being written however fast this machine is.
CHUNK_PAUSE_SECONDS = 0.02


def file_lines() -> list[bytes]:
    return [orjson.dumps(data.firm(seq=SEQ + n)) + b"\n" for n in range(LINES)]


def paced(lines: list[bytes]) -> Iterator[bytes]:
    for start in range(0, len(lines), CHUNK_LINES):
        yield b"".join(lines[start : start + CHUNK_LINES])
        time.sleep(CHUNK_PAUSE_SECONDS)


def import_file(drill: Drill, lines: list[bytes]) -> httpx.Response | BaseException:
    try:
        return httpx.post(
            f"{drill.gateway}/v1/firms/bulk",
            params={"import_id": IMPORT_ID, "batch_size": BATCH},
            content=paced(lines),
            headers={
                "Authorization": f"Bearer {drill.world.portal_key}",
                "Content-Type": "application/x-ndjson",
            },
            timeout=300,
        )
    except httpx.HTTPError as exc:
        return exc


def committed_batches(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM import_batch WHERE import_id = %s", (IMPORT_ID,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_registry_killed_during_bulk_import_then_import_resent(drill: Drill) -> None:
    lines = file_lines()
    first: list[httpx.Response | BaseException] = []
    sender = threading.Thread(target=lambda: first.append(import_file(drill, lines)))
    sender.start()
    deadline = time.monotonic() + 120
    while (done := committed_batches(drill.database_url)) < 3:
        assert sender.is_alive(), f"the import ended after {done} batches, before the kill: {first}"
        assert time.monotonic() < deadline, f"only {done} batches committed in 120 s"
        time.sleep(0.02)
    drill.cluster.services["registry"].kill()
    sender.join(timeout=60)
    before_resend = committed_batches(drill.database_url)
    assert 3 <= before_resend < BATCHES, f"the kill came too late: {before_resend} batches"

    drill.cluster.restart("registry").wait_ready()
    back_at = time.monotonic()
    portal = {"Authorization": f"Bearer {drill.world.portal_key}"}
    deadline = back_at + 30
    while True:  # the first answer the registry gives through the gateway again
        listed = httpx.get(f"{drill.gateway}/v1/firms", params={"limit": 1}, headers=portal)
        if listed.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    recovered_after = time.monotonic() - back_at
    again = import_file(drill, lines)

    verdicts = checks.Verdicts()
    interrupted = first[0]
    shown = (
        f"{interrupted.status_code} Retry-After={interrupted.headers.get('Retry-After')}"
        if isinstance(interrupted, httpx.Response)
        else repr(interrupted)
    )
    print(
        f"killed after {before_resend} of {BATCHES} batches; the import answered {shown}; "
        f"firms listed {recovered_after:.1f} s after the registry was back"
    )
    verdicts.expect(
        isinstance(interrupted, httpx.Response)
        and interrupted.status_code == 503
        and "Retry-After" in interrupted.headers,
        "the interrupted import should answer 503 with Retry-After, got "
        + (
            f"{interrupted.status_code} {interrupted.headers.get('Retry-After')} "
            f"{interrupted.text[:300]}"
            if isinstance(interrupted, httpx.Response)
            else repr(interrupted)
        ),
    )
    verdicts.expect(
        listed.status_code == 200 and recovered_after <= checks.RECOVERY_SECONDS,
        f"firms listed {listed.status_code} {recovered_after:.1f} s after the registry was back",
    )
    assert isinstance(again, httpx.Response), again
    assert again.status_code == 200, again.text
    *results, summary = [orjson.loads(line) for line in again.content.splitlines()]
    statuses = {r["status"] for r in results}
    skipped = sum(1 for r in results if r["status"] == "already_committed")
    verdicts.expect(statuses <= {"created", "already_committed"}, f"line results: {statuses}")
    verdicts.expect(skipped == before_resend * BATCH, f"{skipped} lines skipped")
    verdicts.expect(
        summary["summary"]["created"] == LINES - skipped, f"summary: {summary['summary']}"
    )
    codes = [orjson.loads(line)["credit_code"] for line in lines]
    with psycopg.connect(drill.database_url) as conn:
        stored = conn.execute(
            "SELECT credit_code, count(*) FROM firm WHERE credit_code = ANY(%s) "
            "GROUP BY credit_code",
            (codes,),
        ).fetchall()
    counts = dict(stored)
    missing = [code for code in codes if code not in counts]
    doubled = {code: n for code, n in counts.items() if n != 1}
    verdicts.expect(not missing, f"{len(missing)} firms of the file missing, e.g. {missing[:3]}")
    verdicts.expect(not doubled, f"firms stored more than once: {list(doubled.items())[:3]}")
    verdicts.assert_all()
