"""Bulk-import validation in worker processes: the same answers as in threads, batches still
written in order, a killed worker costing nothing but time, the setting's bounds."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from services.registry import config
from services.registry.api import firms as firms_api
from services.registry.bulk import NumberedLine, PreparedBatch, prepare_batch
from services.registry.config import RegistrySettings, default_processes
from services.registry.main import create_app
from services.registry.validation_pool import ValidationPool
from tests.conftest import _wipe
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor, make_principal
from tests.registry.test_history import past_line

BATCH = 4


@pytest.fixture(scope="module")
def pool() -> Iterator[ValidationPool]:
    """One pool of two workers for the whole module (each start costs a second or so)."""
    shared = ValidationPool(2)
    for started in shared.warm():
        started.result(timeout=60)
    yield shared
    shared.shutdown()


def body() -> bytes:
    """Several batches of 4: valid lines, a blank one, bad JSON, a repeated key, a line that
    fails validation, a credit code twice in one batch, and a clean batch after them."""
    lines = [orjson.dumps(data.firm(seq)) for seq in range(1, 6)]
    lines.append(b"")
    lines.append(b"{not json")
    lines.append(b'{"name": "a", "name": "b"}')
    lines.append(orjson.dumps(data.firm(7, employees=-3)))
    lines += [orjson.dumps(data.firm(8)), orjson.dumps(data.firm(8, employees=9))]
    lines += [orjson.dumps(data.firm(seq)) for seq in range(10, 23)]
    lines.append(b"[1, 2]")
    return b"\n".join(lines) + b"\n"


def import_firms(
    engine: Engine, pool: ValidationPool | None
) -> tuple[bytes, list[tuple[object, ...]]]:
    """The answer to body() on an empty database, and the firms it stored."""
    _wipe(engine)
    settings = RegistrySettings(internal_token=TOKEN, database_url="unused://")
    with TestClient(create_app(settings, engine, validation_pool=pool)) as client:
        admin_id = _admin(engine)
        portal = make_principal(Actor(client, admin_id), "portal")
        answer = portal.post(
            "/v1/firms/bulk", params={"import_id": "same", "batch_size": BATCH}, content=body()
        )
    assert answer.status_code == 200, answer.text
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT id, credit_code, employees, size_class FROM firm ORDER BY id")
        )
        return answer.content, [tuple(row) for row in stored]


def _admin(engine: Engine) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO principal (role, name, created_at) "
                    "VALUES ('admin', 'a', CURRENT_TIMESTAMP) RETURNING id"
                )
            ).scalar_one()
        )


def validate_count() -> float:
    labels = {"item": "firm", "phase": "validate"}
    return REGISTRY.get_sample_value("finmatch_bulk_import_phase_seconds_count", labels) or 0.0


def test_the_pool_answers_as_threads_do(engine: Engine, pool: ValidationPool) -> None:
    threads, stored_by_threads = import_firms(engine, None)
    before = validate_count()
    processes, stored_by_processes = import_firms(engine, pool)
    assert processes == threads  # byte for byte: results in line order, then the summary
    assert stored_by_processes == stored_by_threads
    # The validate phase is observed in this process, once per batch (6 batches of 4 lines).
    assert validate_count() - before == 6
    *lines, tail = (orjson.loads(line) for line in processes.splitlines())
    assert tail["batches"] == {"committed": 3, "rejected": 3, "already_committed": 0, "conflict": 0}
    assert tail["summary"] == {
        "lines": 24,
        "created": 12,
        "updated": 0,
        "invalid": 5,
        "not_written": 7,
    }
    duplicate = next(line for line in lines if line["line"] == 11)
    assert duplicate["errors"] == [
        {"field": "credit_code", "message": "duplicate of line 10 in this batch"}
    ]


def prepare_or_die(batch_no: int, lines: Sequence[NumberedLine]) -> PreparedBatch:
    """prepare_batch, but a worker given the third batch dies (as if killed by the OOM killer);
    in the registry process (the thread-pool fallback) it validates as usual."""
    if batch_no == 2 and multiprocessing.parent_process() is not None:
        os._exit(9)
    return prepare_batch(batch_no, lines)


def test_a_killed_worker_costs_nothing_but_time(
    sqlite_engine: Engine,
    pool: ValidationPool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The import goes on in threads and answers as if nothing happened; the pool is broken
    once, logged once, and a new one (new workers) serves the next import. SQLite only: the
    backend plays no part in it, and each new pool costs seconds."""
    engine = sqlite_engine
    expected, stored = import_firms(engine, None)
    workers = pool.worker_pids()
    monkeypatch.setattr(firms_api, "prepare_batch", prepare_or_die)
    with caplog.at_level(logging.WARNING, logger="finmatch.registry.bulk"):
        answer, stored_after_kill = import_firms(engine, pool)
    assert answer == expected
    assert stored_after_kill == stored
    broken = [r for r in caplog.records if "validation pool broken" in r.getMessage()]
    assert len(broken) == 1

    monkeypatch.undo()
    again, _ = import_firms(engine, pool)
    assert again == expected
    assert pool.worker_pids()
    assert not set(pool.worker_pids()) & set(workers)


def test_the_processes_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FINMATCH_BULK_VALIDATE_PROCESSES", raising=False)
    monkeypatch.setattr(config, "CGROUP_CPU_MAX", str(tmp_path / "absent"))  # no quota here
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    assert default_processes() == 3
    assert RegistrySettings().bulk_validate_workers == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {5})
    assert RegistrySettings().bulk_validate_workers == 0  # one core: threads, no pool
    assert RegistrySettings(bulk_validate_processes=0).bulk_validate_workers == 0
    monkeypatch.setenv("FINMATCH_BULK_VALIDATE_PROCESSES", "4")
    assert RegistrySettings().bulk_validate_workers == 4
    monkeypatch.setenv("FINMATCH_BULK_VALIDATE_PROCESSES", "0")
    assert RegistrySettings().bulk_validate_workers == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)))
    limits = tmp_path / "cpu.max"
    for quota, expected in (("max 100000", 16), ("100000 100000", 0), ("250000 100000", 3)):
        limits.write_text(quota + "\n")  # a container limited to 1 CPU: no pool
        assert default_processes(str(limits)) == expected
    assert default_processes(str(tmp_path / "absent")) == 16
    for bad in ("-1", "65", "two", "1.5"):
        monkeypatch.setenv("FINMATCH_BULK_VALIDATE_PROCESSES", bad)
        with pytest.raises(ValidationError, match="bulk_validate_processes"):
            RegistrySettings()
    with pytest.raises(ValidationError, match="bulk_validate_processes"):
        RegistrySettings(bulk_validate_processes=-1)
    with pytest.raises(ValueError, match="at least one process"):
        ValidationPool(0)


def import_history(engine: Engine, pool: ValidationPool | None) -> bytes:
    """Past decisions (their prepare is a partial holding the hash key): valid lines, a bad
    one, a broken one, over three batches, on an empty database."""
    _wipe(engine)
    settings = RegistrySettings(internal_token=TOKEN, database_url="unused://")
    with TestClient(create_app(settings, engine, validation_pool=pool)) as client:
        admin = Actor(client, _admin(engine))
        institution = admin.post("/v1/institutions", json={"name": "银行", "kind": "bank"})
        bank = make_principal(admin, "institution", institution_id=institution.json()["id"])
        product_id = bank.post("/v1/products", json=data.product()).json()["id"]
        lines = [
            orjson.dumps(past_line(product_id, requested_amount_yuan=2_000_000 - seq))
            for seq in range(9)
        ]
        lines[4] = orjson.dumps(past_line(product_id, requested_term_months=0))
        lines.append(b'{"product_id": 1,')
        answer = bank.post(
            "/v1/decisions/history",
            params={"import_id": "h", "batch_size": BATCH},
            content=b"\n".join(lines),
        )
    assert answer.status_code == 200, answer.text
    return answer.content


def test_past_decisions_through_the_pool(sqlite_engine: Engine, pool: ValidationPool) -> None:
    threads = import_history(sqlite_engine, None)
    assert import_history(sqlite_engine, pool) == threads
    tail = orjson.loads(threads.splitlines()[-1])
    assert tail["summary"]["imported"] == 4
    assert tail["summary"]["invalid"] == 2


def test_the_lifespan_owns_the_pool_the_setting_asks_for(sqlite_engine: Engine) -> None:
    """Built at start (its workers started), shut down at exit; 0: none, threads."""
    settings = RegistrySettings(
        internal_token=TOKEN, database_url="unused://", bulk_validate_processes=1
    )
    with TestClient(create_app(settings, sqlite_engine)) as client:
        pool = client.app.state.validation_pool  # type: ignore[attr-defined]
        assert isinstance(pool, ValidationPool)
        assert pool.processes == 1
    assert pool.executor() is None  # shut down with the app
    settings = RegistrySettings(
        internal_token=TOKEN, database_url="unused://", bulk_validate_processes=0
    )
    with TestClient(create_app(settings, sqlite_engine)) as client:
        assert client.app.state.validation_pool is None  # type: ignore[attr-defined]


ORPHAN_SCRIPT = """
import sys, time
from services.registry.validation_pool import ValidationPool
pool = ValidationPool(2)
for started in pool.warm():
    started.result(timeout=60)
print(" ".join(map(str, pool.worker_pids())), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for every purpose but its process-table entry.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the workers")
def test_workers_of_a_killed_registry_do_not_outlive_it() -> None:
    """A registry killed with SIGKILL cannot shut its pool down: its workers exit by
    themselves (CI once found them alive, ~100-200 MB each, after the drills)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2, workers
        assert all(_alive(pid) for pid in workers)
    finally:
        parent.kill()
        parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), workers
