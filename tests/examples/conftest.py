"""The examples (examples/*.py) run as a newcomer runs them: as scripts in their own processes,
against a real stack seeded with the demo world, reading the demo keys from the file the seed
wrote (what `make run` does, in a smaller world: registry, matching, gateway and the webhook
dispatcher as their own processes, tests/e2e/cluster.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from finmatch_client import FinmatchClient
from tests.e2e.cluster import REPO, Cluster
from tests.e2e.conftest import cluster_of

EXAMPLES = REPO / "examples"
SCRIPT_TIMEOUT = 240.0


@dataclass
class Ran:
    returncode: int
    output: str


@dataclass
class Demo:
    cluster: Cluster
    url: str
    keys_file: Path
    keys: dict[str, str]
    clients: list[FinmatchClient] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """The test's environment without FINMATCH_* (no setting of the developer's leaks into
        the examples), with this checkout's client first on the path."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINMATCH_")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "clients" / "python"), str(REPO)])
        env["PYTHONUNBUFFERED"] = "1"
        return env | extra

    def command(self, script: str, *args: str) -> list[str]:
        return [sys.executable, str(EXAMPLES / script), *args]

    def connection(self) -> list[str]:
        """Where make run's examples would look by default: its URL and var/demo-keys.json."""
        return ["--url", self.url, "--keys-file", str(self.keys_file)]

    def run(self, script: str, *args: str, **env: str) -> Ran:
        done = subprocess.run(
            self.command(script, *args),
            cwd=REPO,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            check=False,
        )
        return Ran(done.returncode, done.stdout)

    def start(self, script: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(script, *args),
            cwd=REPO,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def client(self, role: str) -> FinmatchClient:
        made = FinmatchClient(self.url, self.keys[role])
        self.clients.append(made)
        return made

    def decisions_count(self) -> dict[str, int]:
        """What the registry counts for training (internal: the cluster's token)."""
        registry = self.cluster.services["registry"]
        answer = httpx.get(
            f"{registry.url}/internal/decisions/count",
            headers={"X-Internal-Token": self.cluster.internal_token},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        counted: dict[str, int] = answer.json()
        return counted


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    keys_file = tmp_path_factory.mktemp("make-run") / "var" / "demo-keys.json"
    with cluster_of("examples", log_dir=tmp_path_factory.mktemp("examples-logs")) as running:

        def seed(_database_url: str) -> None:
            # The demo world make run seeds (its institutions, products, portal and keys), with
            # fewer firms and past applications: the examples need its shape, not its size.
            running.run(
                *("-m", "services.registry.cli", "seed"),
                *("--firms", "400", "--applications", "600", "--keys-file", str(keys_file)),
            )

        running.start_registry(before_serve=seed)
        matching = running.start_matching()
        gateway = running.start_gateway(matching)
        dispatcher = running.start_dispatcher(matching)
        matching.wait_ready()
        gateway.wait_ready()
        dispatcher.wait_ready()
        made = Demo(
            cluster=running,
            url=gateway.url,
            keys_file=keys_file,
            keys=json.loads(keys_file.read_text()),
        )
        yield made
        for client in made.clients:
            client.close()


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """What ``process`` printed up to the line holding ``marker`` (it keeps running)."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} within {timeout:.0f} s:\n{''.join(seen)}")
