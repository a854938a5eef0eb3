"""The start-up heap is frozen out of garbage collection, when the setting asks for it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.gateway.main import create_app
from shared.heap import freeze_startup_heap
from tests.gateway.conftest import gateway_settings


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # never leave this test's objects frozen for the rest of the suite


def test_freezing_moves_the_live_heap_out_of_collections(thawed: None) -> None:
    assert freeze_startup_heap(False) == 0
    assert gc.get_freeze_count() == 0
    before: list[object] = [[]]  # alive now, so frozen with the rest
    frozen = freeze_startup_heap(True)
    after: list[object] = [[]]
    collected = {id(o) for o in gc.get_objects()}  # what collections still walk
    assert id(before) not in collected
    assert id(after) in collected
    assert frozen == gc.get_freeze_count() > 0


def test_a_service_freezes_its_heap_at_start_only_if_configured(thawed: None) -> None:
    with TestClient(create_app(gateway_settings(gc_freeze=False))):
        assert gc.get_freeze_count() == 0
    with TestClient(create_app(gateway_settings(gc_freeze=True))):
        assert gc.get_freeze_count() > 10_000  # the imported libraries, at least
