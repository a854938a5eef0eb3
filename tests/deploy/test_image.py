"""deploy/Dockerfile, .dockerignore and the scripts they ship: pinned, non-root, real probes."""

from __future__ import annotations

import fnmatch
import http.server
import importlib.util
import json
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from alembic.script import ScriptDirectory

from services.registry.migrate import alembic_config
from tests.deploy.helpers import (
    REPO,
    SERVICES,
    get_routes,
    host_variable,
    port_variable,
    settings_variables,
)

DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    name: str
    parent: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def parse_dockerfile(text: str) -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARGs and the stages by name (continuation lines joined, comments dropped)."""
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical.splitlines():
        if not line.strip():
            continue
        instruction, _, rest = line.strip().partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            parent, _, name = rest.partition(" AS ")
            current = Stage(name.strip(), parent.strip())
            stages[current.name] = current
        elif current is None:
            assert instruction == "ARG", f"{instruction} before the first FROM"
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            current.instructions.append((instruction, rest))
    return args, stages


def env_of(stages: dict[str, Stage], name: str) -> dict[str, str]:
    """The ENV a stage ends with, inherited ones included."""
    stage = stages[name]
    env = env_of(stages, stage.parent) if stage.parent in stages else {}
    for line in stage.all("ENV"):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    chain = [stages[name]]
    while chain[-1].parent in stages:
        chain.append(stages[chain[-1].parent])
    return chain


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_every_stage_stands_on_the_pinned_slim_base(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    args, stages = dockerfile
    assert BASE_IMAGE.match(args["PYTHON_IMAGE"]), args["PYTHON_IMAGE"]
    roots = {chain[-1].parent for chain in (lineage(stages, s) for s in stages)}
    assert roots == {"${PYTHON_IMAGE}"}


def test_it_builds_in_one_stage_and_runs_in_another(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    _, stages = dockerfile
    installs = " ".join(stages["build"].all("RUN"))
    assert "pip install -c constraints.txt ." in installs
    assert "dev" not in re.findall(r"\[([\w,]+)\]", installs)
    copies = stages["runtime"].all("COPY")
    assert any(c.startswith("--from=build /opt/finmatch") for c in copies)
    # Nothing but the virtualenv and the two deploy scripts reaches the runtime image.
    assert all(c.startswith("--from=build") or c.startswith("deploy/") for c in copies)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_target_runs_as_non_root_and_listens_everywhere(
    dockerfile: tuple[dict[str, str], dict[str, Stage]], service: str
) -> None:
    _, stages = dockerfile
    chain = lineage(stages, service)
    users = [u for stage in reversed(chain) for u in stage.all("USER")]
    assert users, f"{service} runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"{service} runs as {users[-1]}"
    assert int(uid) >= 1000, f"{service} runs as {users[-1]}"

    env = env_of(stages, service)
    known = settings_variables(service)
    assert {v for v in env if v.startswith("FINMATCH_")} <= set(known)
    assert env[host_variable(service)] == "0.0.0.0"
    port = int(env[port_variable(service)])
    assert port == known[port_variable(service)]
    assert stages[service].all("EXPOSE") == [str(port)]
    # Outside development the services refuse placeholder secrets.
    assert env["FINMATCH_ENVIRONMENT"] != "development"


@pytest.mark.parametrize("service", SERVICES)
def test_each_target_serves_its_cli_and_checks_its_liveness(
    dockerfile: tuple[dict[str, str], dict[str, Stage]], service: str
) -> None:
    _, stages = dockerfile
    (cmd,) = stages[service].all("CMD")
    command = json.loads(cmd)
    assert command[:3] == ["python", "-m", f"services.{service}.cli"]
    assert importlib.util.find_spec(command[2]) is not None
    (check,) = stages[service].all("HEALTHCHECK")
    probe = json.loads(check[check.index("CMD") + 3 :].strip())
    assert probe[:3] == ["python", "/app/deploy/healthcheck.py", service]
    # Liveness: no dependency, or Docker would call a replica sick for its database's outage.
    assert probe[3] == "/healthz"
    assert probe[3] in get_routes(service)


def test_compose_builds_targets_that_exist(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    _, stages = dockerfile
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name, spec in compose["services"].items():
        if "build" in spec:
            assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
            assert spec["build"]["target"] in stages, name


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out of the context (last matching rule wins)."""
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        rule = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, rule) or path.startswith(rule + "/"):
            verdict = not negated
    return verdict


def test_dockerignore_lets_through_exactly_what_the_dockerfile_copies(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    _, stages = dockerfile
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for stage in stages.values()
        for copy in stage.all("COPY")
        if not copy.startswith("--from")
        for source in shlex.split(copy)[:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not ignored(source, patterns), f".dockerignore drops {source}"
    for kept_out in (".git", ".venv", "var/finmatch.db", "tests/conftest.py", ".env"):
        assert ignored(kept_out, patterns), f"{kept_out} would be sent to the builder"


def packaged(path: Path, package_data: dict[str, list[str]]) -> bool:
    """Whether setuptools' package-data rules put this non-Python file into the wheel."""
    relative = path.relative_to(REPO)
    for package, patterns in package_data.items():
        if package == "*":
            base, name = relative.parent, relative.name
        else:
            base = Path(*package.split("."))
            if base not in relative.parents:
                continue
            name = relative.relative_to(base).as_posix()
        if any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
            return True
    return False


def test_the_installed_package_carries_every_data_file_the_services_read() -> None:
    # The image installs the package (not the source tree): a template or migration script
    # left out of package-data would be missing only in the container.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    data_files = [
        path
        for top in ("services", "shared")
        for path in (REPO / top).rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"}
        if "__pycache__" not in path.parts
    ]
    assert data_files
    missing = [str(p.relative_to(REPO)) for p in data_files if not packaged(p, package_data)]
    assert missing == [], "not in [tool.setuptools.package-data]"
    assert not packaged(REPO / "services" / "gateway" / "notes.txt", package_data)


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "deploy" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_health_check_knows_each_services_port_setting() -> None:
    healthcheck = load_script("healthcheck")
    assert set(healthcheck.PORTS) == {*SERVICES, "dispatcher"}
    for service in SERVICES:
        variable, default = healthcheck.PORTS[service]
        assert variable == port_variable(service)
        assert default == settings_variables(service)[variable]
    # The dispatcher is registry code in a process of its own: its port is a registry setting.
    variable, default = healthcheck.PORTS["dispatcher"]
    assert variable == "FINMATCH_DISPATCHER_METRICS_PORT"
    assert default == settings_variables("registry")[variable]


class _Probes(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def probed_port() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Probes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_health_check_exits_0_only_on_200(
    probed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthcheck = load_script("healthcheck")
    monkeypatch.setenv("FINMATCH_GATEWAY_PORT", str(probed_port))
    assert healthcheck.main(["gateway"]) == 0
    assert healthcheck.main(["gateway", "/readyz"]) == 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("FINMATCH_GATEWAY_PORT", str(closed))
    assert healthcheck.main(["gateway"]) == 1
    assert healthcheck.main(["nonsense"]) == 2


def run_prestart(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "FINMATCH_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, str(REPO / "deploy" / "prestart.py"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_prestart_migrates_the_database_to_head(tmp_path: Path) -> None:
    database = tmp_path / "registry.db"
    done = run_prestart(f"sqlite:///{database}", "--timeout", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    head = ScriptDirectory.from_config(alembic_config(str(database))).get_current_head()
    with sqlite3.connect(database) as conn:
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == head


def test_prestart_gives_up_on_a_database_that_does_not_answer() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    done = run_prestart(f"postgresql://finmatch:x@127.0.0.1:{closed}/finmatch", "--timeout", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "database unreachable" in done.stdout
