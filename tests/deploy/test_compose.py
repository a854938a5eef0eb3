"""docker-compose.yml: valid Compose, and every variable, port and probe it names is real."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.gateway.config import GatewaySettings
from tests.deploy.helpers import (
    COMPOSE_ONLY_VARIABLES,
    REPO,
    SERVICES,
    VARIABLE,
    effective_port,
    get_routes,
    interpolations,
    placeholder_secrets,
    port_variable,
    settings_variables,
)

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / "compose.env.example"
REQUIRED_VARIABLES = {
    "POSTGRES_PASSWORD",
    "FINMATCH_INTERNAL_TOKEN",
    "FINMATCH_MODEL_SIGNING_KEY",
    "FINMATCH_BOOTSTRAP_ADMIN_KEY",
    "FINMATCH_CREDIT_CODE_HASH_KEY",
}
PROBE = re.compile(r"/app/deploy/healthcheck\.py$")
DISPATCHER = ["python", "-m", "services.registry.dispatcher"]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against the Compose specification's schema it ships (offline)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def finmatch_services(compose: dict[str, Any]) -> dict[str, str]:
    """Compose service -> the finmatch service whose image it runs (its build target)."""
    return {
        name: spec["build"]["target"]
        for name, spec in compose["services"].items()
        if "build" in spec
    }


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, please"
    return {k: str(v) for k, v in env.items()}


def resolved(value: str) -> str:
    """A value with each ``${NAME:-default}`` replaced by its default (secrets by a stand-in)."""

    def substitute(match: re.Match[str]) -> str:
        return match.group(3) if match.group(2) in ("-", ":-") else "secret"

    return VARIABLE.sub(substitute, value)


def test_the_compose_file_is_valid_compose() -> None:
    done = validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("broken", "replacement"),
    [
        # A misspelt key inside a service.
        ("    restart: unless-stopped\n", "    restartt: unless-stopped\n"),
        # A depends_on condition Compose does not know.
        ("condition: service_completed_successfully", "condition: service_done"),
    ],
)
def test_a_broken_copy_fails_validation(tmp_path: Path, broken: str, replacement: str) -> None:
    text = COMPOSE.read_text()
    assert broken in text
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(text.replace(broken, replacement, 1))
    assert validate(copy).returncode != 0


def test_the_system_services_are_all_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "registry", "matching", "gateway"} <= set(services)
    assert set(finmatch_services(compose).values()) == set(SERVICES)
    assert services["demo-seed"]["profiles"] == ["demo"]


def unknown_variables(compose: dict[str, Any]) -> list[str]:
    """FINMATCH_* variables set on a container whose service has no such setting."""
    return [
        f"{name}: {variable} is no setting of the {service}"
        for name, service in finmatch_services(compose).items()
        for variable in environment(compose["services"][name])
        if variable.startswith("FINMATCH_") and variable not in settings_variables(service)
    ]


def test_every_finmatch_variable_is_a_setting_of_that_service(compose: dict[str, Any]) -> None:
    assert unknown_variables(compose) == []


def test_a_variable_of_another_service_is_caught(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    # The registry limits no rates (the gateway does); a typo is no setting at all.
    broken["services"]["registry"]["environment"]["FINMATCH_RATE_LIMIT_PORTAL"] = "600"
    broken["services"]["gateway"]["environment"]["FINMATCH_GATEWAY_PROT"] = "8000"
    assert unknown_variables(broken) == [
        "registry: FINMATCH_RATE_LIMIT_PORTAL is no setting of the registry",
        "gateway: FINMATCH_GATEWAY_PROT is no setting of the gateway",
    ]


def test_every_interpolated_variable_is_known_and_in_the_example(
    compose: dict[str, Any],
) -> None:
    settings = {v for s in SERVICES for v in settings_variables(s)}
    example = ENV_EXAMPLE.read_text()
    for variable, operator, _argument in interpolations(COMPOSE.read_text()):
        assert variable in settings | COMPOSE_ONLY_VARIABLES, f"unknown variable {variable}"
        assert re.search(rf"^#? ?{variable}=", example, re.M), f"{variable} not in the example"
        if variable in REQUIRED_VARIABLES:
            assert operator == ":?", f"{variable} must be required (${{{variable}:?...}})"


def test_defaults_in_the_compose_file_are_the_settings_defaults(
    compose: dict[str, Any],
) -> None:
    for name, service in finmatch_services(compose).items():
        known = settings_variables(service)
        for variable, value in environment(compose["services"][name]).items():
            for inner, operator, argument in interpolations(value):
                if operator == ":-" and inner == variable and variable in known:
                    assert argument.lower() == str(known[variable]).lower(), (
                        f"{name}: {variable} defaults to {argument}, the service to "
                        f"{known[variable]}"
                    )


def test_secrets_come_from_required_variables_and_placeholders_are_refused(
    compose: dict[str, Any],
) -> None:
    for name, service in finmatch_services(compose).items():
        env = environment(compose["services"][name])
        # Outside "development" the services refuse their placeholder secrets.
        assert env.get("FINMATCH_ENVIRONMENT", "production") != "development", name
        for secret in placeholder_secrets(service) & set(env):
            assert interpolations(env[secret]) == [
                (secret, ":?", interpolations(env[secret])[0][2])
            ], f"{name}: {secret} must be ${{{secret}:?...}}"
        if compose["services"][name].get("command") is None:
            # A serving container: every placeholder secret its settings have is set.
            missing = {
                s for s in placeholder_secrets(service) if s != "FINMATCH_BOOTSTRAP_ADMIN_KEY"
            } - set(env)
            assert not missing, f"{name} does not set {missing}"


def test_only_the_gateway_publishes_a_port(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        if spec.get("profiles") == ["test-deps"]:
            # The integration tests' own PostgreSQL and Redis, on loopback only.
            assert all(str(p).startswith("127.0.0.1:") for p in spec["ports"]), name
            continue
        if name != "gateway":
            assert "ports" not in spec, f"{name} publishes a port"
    (published,) = compose["services"]["gateway"]["ports"]
    gateway_env = environment(compose["services"]["gateway"])
    assert published["target"] == effective_port("gateway", gateway_env)


def test_the_gateway_believes_proxy_headers_from_its_edge_network_only(
    compose: dict[str, Any],
) -> None:
    """The host's TLS proxy reaches the published port through the edge network: the gateway
    trusts that subnet (so https behind the proxy makes the cookie Secure) and nothing else."""
    (edge,) = compose["networks"]["edge"]["ipam"]["config"]
    subnet = ipaddress.ip_network(resolved(edge["subnet"]))
    value = resolved(environment(compose["services"]["gateway"])["FINMATCH_TRUSTED_PROXIES"])
    trusted = GatewaySettings(trusted_proxies=json.loads(value)).trusted_proxies
    assert trusted == (subnet,)
    assert subnet.is_private
    on_edge = [n for n, spec in compose["services"].items() if "edge" in spec.get("networks", [])]
    assert on_edge == ["gateway"]


def test_urls_name_a_compose_service_on_its_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kinds = finmatch_services(compose)
    by_kind = {kind: name for name, kind in kinds.items() if name in SERVICES}
    for name in kinds:
        for variable, value in environment(services[name]).items():
            if not variable.endswith("_URL"):
                continue
            url = urlsplit(resolved(value))
            assert url.hostname in services, f"{name}: {variable} names no service"
            target = services[url.hostname]
            if url.hostname in by_kind:  # one of ours: the port it listens on
                port = effective_port(url.hostname, environment(target))
                assert url.port == port, f"{name}: {variable} port {url.port} != {port}"
            elif url.hostname == "postgres":
                assert url.port == 5432
                assert url.username == target["environment"]["POSTGRES_USER"]
                assert url.path == "/" + target["environment"]["POSTGRES_DB"]
            elif url.hostname == "redis":
                assert url.port == 6379
            # ...and the two are on a common network, or the name would not resolve.
            assert set(services[name]["networks"]) & set(target["networks"]), (name, variable)


def test_health_checks_probe_real_routes(compose: dict[str, Any]) -> None:
    for name, service in finmatch_services(compose).items():
        check = compose["services"][name]["healthcheck"]
        if check.get("disable"):
            assert compose["services"][name]["restart"] == "no", f"{name}: a one-shot only"
            continue
        test = check["test"]
        assert test[0] == "CMD", f"{name}: {test}"
        assert PROBE.search(test[2]), f"{name}: {test}"
        if compose["services"][name].get("command") == DISPATCHER:
            # The webhook dispatcher serves no API, only its metrics.
            assert test[3:] == ["dispatcher", "/metrics"], f"{name}: {test}"
            continue
        probed_service, path = test[3], test[4]
        assert probed_service == service
        assert path in get_routes(service), f"{name}: {path} is no route of the {service}"
        # Healthy means ready: compose orders start-up by it.
        assert path == "/readyz"


def test_the_registry_waits_for_its_prestart_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"][:2] == ["python", "/app/deploy/prestart.py"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    needs = services["registry"]["depends_on"]
    assert needs["migrate"]["condition"] == "service_completed_successfully"
    assert services["demo-seed"]["depends_on"]["migrate"] == needs["migrate"]
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_state_lives_in_named_volumes_and_postgres_on_its_own_network(
    compose: dict[str, Any],
) -> None:
    services, declared = compose["services"], set(compose["volumes"])
    for name, spec in services.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in declared, f"{name}: {source} is no named volume"
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    on_data = {n for n, s in services.items() if "data" in s.get("networks", [])}
    registry_image = {n for n, k in finmatch_services(compose).items() if k == "registry"}
    assert on_data == {"postgres"} | registry_image
    networks = compose["networks"]
    outside = {n for n, spec in networks.items() if not (spec or {}).get("internal")}
    assert outside == {"edge", "egress"}
    assert {n for n, s in services.items() if "edge" in s.get("networks", [])} == {"gateway"}
    # Only the webhook dispatcher reaches out of the host (to the receivers).
    on_egress = {n for n, s in services.items() if "egress" in s.get("networks", [])}
    assert on_egress == {n for n, s in services.items() if s.get("command") == DISPATCHER}
    assert on_egress == {"dispatcher"}


def test_port_variables_are_left_to_the_image(compose: dict[str, Any]) -> None:
    # The image sets host and port (deploy/Dockerfile); the compose file must not disagree.
    for name, service in finmatch_services(compose).items():
        env = environment(compose["services"][name])
        assert port_variable(service) not in env or env[port_variable(service)] == str(
            settings_variables(service)[port_variable(service)]
        )
