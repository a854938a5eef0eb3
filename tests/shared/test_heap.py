"""The start-up heap is frozen out of garbage collection, when the setting asks for it.

Each check runs in a fresh interpreter: freezing (and the full collection before it) in a test
worker would walk the millions of objects the suite has made, and objects other threads free
meanwhile change the frozen count under the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMATCH_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env | {"PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_freezing_moves_the_live_heap_out_of_collections() -> None:
    out = _python(
        """
        import gc
        from shared.heap import freeze_startup_heap
        assert freeze_startup_heap(False) == 0 and gc.get_freeze_count() == 0
        before = [[]]  # alive now, so frozen with the rest
        frozen = freeze_startup_heap(True)
        after = [[]]
        collected = {id(o) for o in gc.get_objects()}  # what collections still walk
        print(id(before) in collected, id(after) in collected, frozen > 1000)
        """
    )
    assert out == "False True True"


def test_a_service_freezes_its_heap_at_start_only_if_configured() -> None:
    code = """
        import gc
        from fastapi.testclient import TestClient
        from services.gateway.main import create_app
        from tests.gateway.conftest import gateway_settings
        with TestClient(create_app(gateway_settings(gc_freeze={freeze}))):
            print(gc.get_freeze_count())
        """
    assert int(_python(code.format(freeze=False)).splitlines()[-1]) == 0
    # The imported libraries and the app, at least.
    assert int(_python(code.format(freeze=True)).splitlines()[-1]) > 10_000
