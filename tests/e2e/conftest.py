"""Fixtures for the end-to-end tests: a cluster of real service processes per module."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, fresh_database, redis_database
from tests.services import need_postgres, need_redis

# The clusters running now: a failing test's report gets their logs.
_RUNNING: list[Cluster] = []


@contextlib.contextmanager
def cluster_of(label: str, log_dir: Path) -> Iterator[Cluster]:
    """A fresh PostgreSQL database, a Redis database of its own, and no services yet."""
    postgres_url, redis_url = need_postgres(), need_redis()
    with (
        fresh_database(postgres_url, label) as database_url,
        redis_database(redis_url) as redis_url_for_run,
    ):
        cluster = Cluster(database_url=database_url, redis_url=redis_url_for_run, log_dir=log_dir)
        _RUNNING.append(cluster)
        try:
            yield cluster
        finally:
            cluster.stop()
            _RUNNING.remove(cluster)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Registry, one matching service, the gateway and the webhook dispatcher, each its own
    process, all ready."""
    with cluster_of("flow", log_dir=tmp_path_factory.mktemp("e2e-logs")) as running:
        running.start_registry()
        matching = running.start_matching()
        gateway = running.start_gateway(matching)
        dispatcher = running.start_dispatcher(matching)
        matching.wait_ready()
        gateway.wait_ready()
        dispatcher.wait_ready()
        yield running
