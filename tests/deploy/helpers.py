"""What the deployment files are checked against: each service's settings, routes and ports."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic_settings import BaseSettings

from services.gateway.config import GatewaySettings
from services.gateway.main import create_app as create_gateway
from services.matching.config import MatchingSettings
from services.matching.main import create_app as create_matching
from services.registry.config import RegistrySettings
from services.registry.main import create_app as create_registry
from shared.settings import DEV_PLACEHOLDER

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("registry", "matching", "gateway")
SETTINGS: dict[str, type[BaseSettings]] = {
    "registry": RegistrySettings,
    "matching": MatchingSettings,
    "gateway": GatewaySettings,
}
# Settings that hold secrets: a deployment must take them from a secret store, never a literal.
SECRET_SETTINGS = frozenset(
    {
        "FINMATCH_INTERNAL_TOKEN",
        "FINMATCH_MODEL_SIGNING_KEY",
        "FINMATCH_BOOTSTRAP_ADMIN_KEY",
        "FINMATCH_CREDIT_CODE_HASH_KEY",
    }
)
# Variables the deployment files use that no service reads (compose interpolation).
COMPOSE_ONLY_VARIABLES = frozenset(
    {
        "POSTGRES_PASSWORD",
        "IMAGE_TAG",
        "GATEWAY_PUBLISH_ADDRESS",
        "GATEWAY_PUBLISH_PORT",
        "GATEWAY_EDGE_SUBNET",
    }
)
# The keys of the Kubernetes Secret the manifests reference.
SECRET_NAME = "finmatch-secrets"
SECRET_KEYS = frozenset(
    {
        "postgres-password",
        "internal-token",
        "model-signing-key",
        "bootstrap-admin-key",
        "credit-code-hash-key",
    }
)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def env_name(settings: type[BaseSettings], field: str) -> str:
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


def settings_variables(service: str) -> dict[str, Any]:
    """Every environment variable the service reads, with its default."""
    settings = SETTINGS[service]
    variables: dict[str, Any] = {}
    for name, field in settings.model_fields.items():
        # An alias would change the variable's name; nothing here expects one.
        assert field.validation_alias is None, name
        assert field.alias is None, name
        variables[env_name(settings, name)] = field.default
    return variables


def all_settings_variables() -> dict[str, set[str]]:
    """Variable name -> the services that read it."""
    readers: dict[str, set[str]] = {}
    for service in SERVICES:
        for variable in settings_variables(service):
            readers.setdefault(variable, set()).add(service)
    return readers


def placeholder_secrets(service: str) -> set[str]:
    """The settings that refuse their development placeholder outside development."""
    return {
        name
        for name, default in settings_variables(service).items()
        if default == DEV_PLACEHOLDER or name in SECRET_SETTINGS
    }


def port_variable(service: str) -> str:
    return f"FINMATCH_{service.upper()}_PORT"


def host_variable(service: str) -> str:
    return f"FINMATCH_{service.upper()}_HOST"


def effective_port(service: str, environment: dict[str, str]) -> int:
    """The port the service listens on given these variables (else its default)."""
    variable = port_variable(service)
    default = settings_variables(service)[variable]
    return int(environment.get(variable, default))


@cache
def app(service: str) -> FastAPI:
    """The service's app as its factory builds it (development settings; no lifespan run)."""
    if service == "registry":
        return create_registry(RegistrySettings(environment="development"))
    if service == "matching":
        return create_matching(MatchingSettings(environment="development"))
    return create_gateway(GatewaySettings(environment="development"))


def get_routes(service: str) -> set[str]:
    return {
        route.path
        for route in app(service).routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or set())
    }


def interpolations(text: str) -> list[tuple[str, str, str]]:
    """``${NAME}``, ``${NAME:-default}``, ``${NAME:?message}`` as (name, operator, argument)."""
    return [(m.group(1), m.group(2) or "", m.group(3) or "") for m in VARIABLE.finditer(text)]


def doc_default(value: Any) -> str:
    """How docs/operations.md writes a default (what one would put in the variable)."""
    if isinstance(value, tuple | list):
        return json.dumps([str(getattr(item, "value", item)) for item in value])
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
