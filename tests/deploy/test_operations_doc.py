"""docs/operations.md documents every setting with its default, and every /readyz answer."""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.gateway.config import GatewaySettings
from services.gateway.main import create_app as create_gateway
from services.matching.config import MatchingSettings
from services.matching.main import create_app as create_matching
from services.registry.config import RegistrySettings
from services.registry.main import create_app as create_registry
from shared.settings import ServiceSettings
from tests.deploy.helpers import (
    COMPOSE_ONLY_VARIABLES,
    REPO,
    SECRET_KEYS,
    doc_default,
    settings_variables,
)

DOC = REPO / "docs" / "operations.md"
SECTIONS = {
    "every": "### Settings of every service",
    "registry": "### Registry settings",
    "matching": "### Matching settings",
    "gateway": "### Gateway settings",
    "deployment": "### Variables of the deployment files only",
}
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| (.+?) \| (.+) \|$")


def section(text: str, heading: str) -> str:
    """From ``heading`` to the next heading of its level or above."""
    start = text.index(heading + "\n")
    level = len(heading) - len(heading.lstrip("#"))
    after = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, start + len(heading))
    return text[start : after.start() if after else None]


def documented(text: str, heading: str) -> dict[str, str]:
    """Variable -> the default column of the table under ``heading``."""
    rows = [ROW.match(line) for line in section(text, heading).splitlines()]
    return {row.group(1): row.group(2) for row in rows if row}


def undocumented(text: str) -> list[str]:
    """Settings missing from their table or shown with a wrong default; stale rows too."""
    problems = []
    common = {f"FINMATCH_{name.upper()}" for name in ServiceSettings.model_fields}
    for scope, heading in SECTIONS.items():
        if scope == "deployment":
            continue
        rows = documented(text, heading)
        if scope == "every":
            expected = {v: settings_variables("registry")[v] for v in common}
        else:
            expected = {v: d for v, d in settings_variables(scope).items() if v not in common}
        for variable, default in expected.items():
            if variable not in rows:
                problems.append(f"{variable} ({scope}) is not documented")
            elif rows[variable] != f"`{doc_default(default)}`":
                problems.append(
                    f"{variable} ({scope}): documented {rows[variable]}, "
                    f"default `{doc_default(default)}`"
                )
        problems += [f"{v} ({scope}) is no such setting" for v in set(rows) - set(expected)]
    return problems


def test_every_setting_is_documented_with_its_default() -> None:
    assert undocumented(DOC.read_text()) == []


def test_a_new_setting_without_docs_fails() -> None:
    text = DOC.read_text()
    without_row = "\n".join(
        line for line in text.splitlines() if "`FINMATCH_MIN_TRAINING_ROWS`" not in line
    )
    assert undocumented(without_row) == ["FINMATCH_MIN_TRAINING_ROWS (matching) is not documented"]
    wrong_default = text.replace(
        "| `FINMATCH_GATEWAY_PORT` | `8000` |", "| `FINMATCH_GATEWAY_PORT` | `80` |"
    )
    assert undocumented(wrong_default) == [
        "FINMATCH_GATEWAY_PORT (gateway): documented `80`, default `8000`"
    ]


def test_the_deployment_variables_and_secret_keys_are_documented() -> None:
    text = DOC.read_text()
    assert set(documented(text, SECTIONS["deployment"])) == COMPOSE_ONLY_VARIABLES
    for key in SECRET_KEYS:
        assert f"`{key}`" in text


@pytest.mark.parametrize(
    "topic",
    [
        "## Backup and restore of PostgreSQL",
        "## Model promotion and rollback",
        "## Key rotation",
        '## <a id="readyz"></a>What a `/readyz` failure means',
    ],
)
def test_the_operating_chapters_are_there(topic: str) -> None:
    assert topic in DOC.read_text().splitlines()


def _answers(readiness: int) -> httpx.MockTransport:
    """A downstream whose /readyz answers ``readiness`` and everything else 503."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(readiness if request.url.path == "/readyz" else 503, json={})

    return httpx.MockTransport(answer)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_every_registry_and_gateway_readiness_answer_is_explained(tmp_path: Path) -> None:
    readiness = section(DOC.read_text(), '## <a id="readyz"></a>What a `/readyz` failure means')
    # A registry whose database cannot be opened.
    broken = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'registry.db'}")
    registry = create_registry(RegistrySettings(environment="development"), broken)
    with TestClient(registry) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    checks: dict[str, str] = dict(answer.json()["checks"])

    # A gateway whose downstreams answer 503 and whose Redis does not answer at all.
    settings = GatewaySettings(
        environment="development",
        registry_url="http://registry.test",
        matching_url="http://matching.test",
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
    )
    gateway = create_gateway(
        settings, registry_transport=_answers(503), matching_transport=_answers(503)
    )
    with TestClient(gateway) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    down = answer.json()["checks"]
    unconfigured = GatewaySettings(environment="development", registry_url="http://registry.test")
    with TestClient(
        create_gateway(
            unconfigured, registry_transport=_answers(200), matching_transport=_answers(200)
        )
    ) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    up = answer.json()["checks"]

    for name, value in [*checks.items(), *down.items(), *up.items()]:
        assert f"`checks.{name}`: `{value}`" in readiness or value == "ok", (name, value)
    assert set(down) == set(up)


@dataclass
class _Scorer:
    version: str = "prior"
    is_prior: bool = True


@dataclass
class _Manager:
    scorer: _Scorer = field(default_factory=_Scorer)
    last_error: str | None = "refused model m1: bad signature; serving prior"

    async def refresh(self) -> None:
        await asyncio.sleep(0)


def test_the_matching_readiness_fields_are_explained() -> None:
    readiness = section(DOC.read_text(), '## <a id="readyz"></a>What a `/readyz` failure means')
    manager: Any = _Manager()
    app = create_matching(MatchingSettings(environment="development"), manager=manager)
    with TestClient(app) as client:
        body = client.get("/readyz").json()
    for key in body:
        if key != "status":
            assert f"`{key}`" in readiness, key
    lifecycle = (REPO / "services" / "matching" / "lifecycle.py").read_text()
    prefixes = re.findall(r"^\| `([a-z][a-z ]+)` \|", readiness, re.M)
    assert len(prefixes) == 3
    for prefix in prefixes:
        # The messages are f-strings in the model lifecycle: the doc names their beginnings.
        assert f'f"{prefix}' in lifecycle, prefix
