"""Abandoned register uploads: expired after FINMATCH_REGISTER_UPLOAD_TTL_HOURS idle, their
staged rows deleted in chunks, published versions untouched, a resend of one refused (409)."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from services.registry.config import RegistrySettings
from services.registry.db import write_session
from services.registry.dispatcher.loop import Dispatcher
from services.registry.models.columns import utcnow
from services.registry.registers import sweep
from services.registry.registers.sweep import BATCH, SweepResult, sweep_abandoned_uploads
from services.registry.registers.tables import ENTRY, UPLOAD
from services.registry.registers.upload import publish
from shared.errors import Conflict
from tests.registry import data
from tests.registry.conftest import Actor, make_principal
from tests.registry.test_registers import answer, upload

TTL = 72.0


@pytest.fixture
def city(admin: Actor) -> Actor:
    return make_principal(admin, "official")


def lines(kind: str, count: int) -> list[dict[str, Any]]:
    return [data.register_line(kind, seq) for seq in range(1, count + 1)]


def refused_part_way(city: Actor, kind: str, upload_id: str, staged_batches: int) -> None:
    """An upload whose line after ``staged_batches`` batches of 2 refuses it: those stay."""
    rows = lines(kind, 2 * staged_batches + 1)
    rows[-1] = rows[-1] | {"unknown_field": 1}
    refused = upload(city, kind, rows, upload_id, batch_size=2)
    assert refused.status_code == 422, refused.text


def upload_row(engine: Engine, upload_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(UPLOAD).where(UPLOAD.c.upload_id == upload_id)).one()


def staged(engine: Engine, upload_id: str) -> tuple[int, int]:
    """(entries, import_batch rows) of the upload."""
    row = upload_row(engine, upload_id)
    with engine.connect() as conn:
        entries = conn.execute(
            sa.select(sa.func.count()).select_from(ENTRY).where(ENTRY.c.added_in == row.id)
        ).scalar_one()
        batches = conn.execute(
            sa.select(sa.func.count())
            .select_from(BATCH)
            .where(BATCH.c.principal_id == row.principal_id)
            .where(BATCH.c.import_id == f"register-upload:{row.id}")
        ).scalar_one()
    return entries, batches


def set_idle_since(engine: Engine, upload_id: str, when: datetime, *, batches: bool = True) -> None:
    """Time travel: the upload (and, with ``batches``, its staged batches) last active then."""
    row = upload_row(engine, upload_id)
    with engine.begin() as conn:
        conn.execute(
            sa.update(UPLOAD).where(UPLOAD.c.id == row.id).values(created_at=when, active_at=when)
        )
        if batches:
            conn.execute(
                sa.update(BATCH)
                .where(BATCH.c.principal_id == row.principal_id)
                .where(BATCH.c.import_id == f"register-upload:{row.id}")
                .values(committed_at=when)
            )


def hours_ago(hours: float) -> datetime:
    return utcnow() - timedelta(hours=hours)


def test_an_abandoned_upload_is_swept_and_the_published_versions_stay(
    city: Actor, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "SWEEP_CHUNK_ROWS", 3)  # 8 entries: three statements
    answer(upload(city, "high_tech", lines("high_tech", 5), "published", batch_size=2))
    answer(upload(city, "green_list", lines("green_list", 2), "appended", append=True))
    refused_part_way(city, "high_tech", "abandoned", staged_batches=4)
    refused_part_way(city, "high_tech", "recent", staged_batches=1)
    assert staged(engine, "abandoned") == (8, 4)
    # The published uploads are as old: age never touches them.
    for upload_id in ("published", "appended", "abandoned"):
        set_idle_since(engine, upload_id, hours_ago(TTL + 1))

    assert sweep_abandoned_uploads(engine, TTL) == SweepResult(expired=1, entries=8, batches=4)

    assert staged(engine, "abandoned") == (0, 0)
    gone = upload_row(engine, "abandoned")
    assert gone.status == "expired"
    assert gone.expired_at is not None
    assert gone.entries == 8  # what it had staged, kept on the record
    assert staged(engine, "recent") == (2, 1)
    assert upload_row(engine, "recent").status == "open"
    assert staged(engine, "published") == (5, 3)
    assert staged(engine, "appended") == (2, 1)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT kind, version FROM register")).all()
        audited = conn.execute(
            sa.text(
                "SELECT entity_id, detail FROM audit_log WHERE action = 'register_upload_expired'"
            )
        ).all()
    assert sorted(versions) == [("green_list", 1), ("high_tech", 1)]
    assert [entity_id for entity_id, _ in audited] == [str(gone.id)]
    # Nothing left to do: a second sweep deletes nothing.
    assert sweep_abandoned_uploads(engine, TTL) == SweepResult()


def test_the_ttl_is_compared_to_the_last_sign_of_life(city: Actor, engine: Engine) -> None:
    refused_part_way(city, "green_list", "edge", staged_batches=1)
    then = hours_ago(TTL + 10)
    set_idle_since(engine, "edge", then)
    at_ttl = then + timedelta(hours=TTL)
    assert sweep_abandoned_uploads(engine, TTL, now=at_ttl).expired == 0  # exactly the TTL
    assert upload_row(engine, "edge").status == "open"
    just_past = at_ttl + timedelta(microseconds=1)
    assert sweep_abandoned_uploads(engine, TTL, now=just_past).expired == 1


def test_a_recent_batch_keeps_an_old_upload_open(city: Actor, engine: Engine) -> None:
    refused_part_way(city, "green_list", "slow", staged_batches=2)
    # Created long ago, but a batch staged an hour ago: it is not abandoned.
    set_idle_since(engine, "slow", hours_ago(TTL + 5), batches=False)
    row = upload_row(engine, "slow")
    with engine.begin() as conn:
        conn.execute(
            sa.update(BATCH)
            .where(BATCH.c.import_id == f"register-upload:{row.id}")
            .where(BATCH.c.batch_no == 1)
            .values(committed_at=hours_ago(1))
        )
    assert sweep_abandoned_uploads(engine, TTL) == SweepResult()
    assert staged(engine, "slow") == (4, 2)


def test_a_resend_of_an_expired_upload_is_409_and_starts_nothing(
    city: Actor, engine: Engine
) -> None:
    refused_part_way(city, "specialized_sme", "late", staged_batches=2)
    set_idle_since(engine, "late", hours_ago(TTL + 1))
    # No sweep ran yet: opening the upload sweeps first, so the answer is the same.
    for attempt in range(2):
        again = upload(city, "specialized_sme", lines("specialized_sme", 5), "late", batch_size=2)
        assert again.status_code == 409, again.text
        problem = again.json()
        assert problem["code"] == "upload_expired"
        assert problem["errors"][0]["field"] == "upload_id"
        assert "new upload_id" in problem["detail"]
        assert staged(engine, "late") == (0, 0), attempt
    with engine.connect() as conn:
        uploads = conn.execute(sa.select(UPLOAD.c.upload_id, UPLOAD.c.status)).all()
        assert conn.execute(sa.text("SELECT count(*) FROM register")).scalar_one() == 0
    assert uploads == [("late", "expired")]
    # The same file under a new upload_id is published.
    _results, tail = answer(
        upload(city, "specialized_sme", lines("specialized_sme", 5), "late-2", batch_size=2)
    )
    assert tail["upload"]["version"] == 1


def test_opening_any_upload_sweeps_the_abandoned_ones(city: Actor, engine: Engine) -> None:
    refused_part_way(city, "high_tech", "left", staged_batches=1)
    set_idle_since(engine, "left", hours_ago(TTL + 1))
    answer(upload(city, "green_list", lines("green_list", 1), "other"))
    assert staged(engine, "left") == (0, 0)
    assert upload_row(engine, "left").status == "expired"


def test_a_resend_within_the_ttl_resumes_and_renews_the_upload(city: Actor, engine: Engine) -> None:
    refused_part_way(city, "high_tech", "nearly", staged_batches=2)
    set_idle_since(engine, "nearly", hours_ago(TTL - 1))
    _results, tail = answer(
        upload(city, "high_tech", lines("high_tech", 5), "nearly", batch_size=2)
    )
    assert tail["batches"]["already_committed"] == 2
    assert tail["upload"]["version"] == 1
    assert upload_row(engine, "nearly").active_at > hours_ago(1)


def test_a_batch_being_staged_is_never_swept_mid_way(city: Actor, engine: Engine) -> None:
    refused_part_way(city, "high_tech", "busy", staged_batches=1)
    set_idle_since(engine, "busy", hours_ago(TTL + 1))  # idle, until the next batch comes
    upload_pk = upload_row(engine, "busy").id
    swept: list[SweepResult] = []
    sweeper = threading.Thread(target=lambda: swept.append(sweep_abandoned_uploads(engine, TTL)))
    # A batch being staged, as write_entries stages it: the upload's row held from the start,
    # its active_at moved in the same transaction.
    with write_session(engine) as batch:
        batch.execute(sa.select(UPLOAD.c.status).where(UPLOAD.c.id == upload_pk).with_for_update())
        sweeper.start()
        sweeper.join(1.0)
        assert sweeper.is_alive()  # the sweep waits for the batch to commit
        batch.execute(sa.update(UPLOAD).where(UPLOAD.c.id == upload_pk).values(active_at=utcnow()))
        batch.commit()
    sweeper.join(30)
    assert swept == [SweepResult()]
    assert upload_row(engine, "busy").status == "open"
    assert staged(engine, "busy") == (2, 1)


def test_an_expired_upload_is_never_published(city: Actor, engine: Engine) -> None:
    refused_part_way(city, "high_tech", "stale", staged_batches=1)
    set_idle_since(engine, "stale", hours_ago(TTL + 1))
    sweep_abandoned_uploads(engine, TTL)
    with pytest.raises(Conflict) as raised:
        publish(engine, upload_row(engine, "stale").id, None)
    assert raised.value.code == "upload_expired"


def test_an_interrupted_purge_is_finished_by_the_next_sweep(city: Actor, engine: Engine) -> None:
    refused_part_way(city, "high_tech", "cut", staged_batches=2)
    with engine.begin() as conn:  # expired, but the process stopped before deleting
        conn.execute(sa.update(UPLOAD).where(UPLOAD.c.upload_id == "cut").values(status="expired"))
    assert sweep_abandoned_uploads(engine, TTL) == SweepResult(expired=0, entries=4, batches=2)


def test_each_dispatcher_sweeps_at_most_once_an_hour(city: Actor, engine: Engine) -> None:
    settings = RegistrySettings(internal_token="t", database_url="unused://")
    dispatcher = Dispatcher(engine, settings)
    refused_part_way(city, "high_tech", "first", staged_batches=1)
    refused_part_way(city, "green_list", "second", staged_batches=1)

    async def clean_up() -> None:
        await dispatcher.clean_up(asyncio.Event())

    set_idle_since(engine, "first", hours_ago(TTL + 1))
    asyncio.run(clean_up())
    assert upload_row(engine, "first").status == "expired"
    set_idle_since(engine, "second", hours_ago(TTL + 1))
    asyncio.run(clean_up())  # the retention again, the sweep not before the hour is out
    assert upload_row(engine, "second").status == "open"
    dispatcher.next_register_sweep -= sweep.SWEEP_INTERVAL_SECONDS
    asyncio.run(clean_up())
    assert staged(engine, "second") == (0, 0)
    asyncio.run(dispatcher.client.aclose())


def test_the_ttl_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RegistrySettings().register_upload_ttl_hours == 72
    monkeypatch.setenv("FINMATCH_REGISTER_UPLOAD_TTL_HOURS", "0.5")
    assert RegistrySettings().register_upload_ttl_hours == 0.5
    for bad in ("0", "-1", "abc", "", "9000"):
        monkeypatch.setenv("FINMATCH_REGISTER_UPLOAD_TTL_HOURS", bad)
        with pytest.raises(ValidationError, match="register_upload_ttl_hours"):
            RegistrySettings()
