"""deploy/k8s: renders with kustomize, validates against the Kubernetes API schemas (offline),
and names only real settings, ports, routes, labels and objects."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from services.gateway.config import GatewaySettings
from tests.deploy.helpers import (
    REPO,
    SECRET_KEYS,
    SECRET_NAME,
    SERVICES,
    effective_port,
    get_routes,
    placeholder_secrets,
    settings_variables,
)

K8S = REPO / "deploy" / "k8s"
KUSTOMIZATIONS = ("base", "overlays/production")
# Schemas kubernetes-validate ships; the oldest Kubernetes we support and a recent one.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
KUBECTL = Path(sys.executable).parent / "kubectl"
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
DISPATCHER = ["python", "-m", "services.registry.dispatcher"]

Objects = list[dict[str, Any]]


def render(path: Path) -> Objects:
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def objects(request: pytest.FixtureRequest) -> Objects:
    return render(K8S / request.param)


def of_kind(objects: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects: Objects) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] in WORKLOADS}


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return found


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels only; we use no expressions) matches ``labels``."""
    assert "matchExpressions" not in selector
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def selected(objects: Objects, selector: dict[str, Any]) -> set[str]:
    """The workloads whose pods ``selector`` matches."""
    return {n for n, w in workloads(objects).items() if selects(selector, pod_labels(w))}


def service_backends(objects: Objects, service: dict[str, Any]) -> set[str]:
    """The workloads behind a Service (its selector is a plain label map)."""
    return selected(objects, {"matchLabels": service["spec"]["selector"]})


def finmatch_containers(objects: Objects) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(workload, service, container) for every container running a finmatch image."""
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            for service in SERVICES:
                image = container["image"].rsplit(":", 1)[0]
                if image.endswith((f"finmatch-{service}", f"finmatch/{service}")):
                    yield name, service, container


def environment(objects: Objects, container: dict[str, Any]) -> dict[str, str]:
    """The variables a container gets: its ConfigMaps' data, then its own env (secrets as
    ``secret:<key>``)."""
    maps = of_kind(objects, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in maps, f"ConfigMap {name} is not part of the rendering"
        env |= maps[name]["data"]
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = f"secret:{ref['key']}"
    return env


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A port by number or by name, as one of the container's ports."""
    for declared in container.get("ports", []):
        if port in (declared["containerPort"], declared.get("name")):
            return int(declared["containerPort"])
    raise AssertionError(f"{container['name']} has no port {port}")


def test_the_production_overlay_renders_into_one_namespace() -> None:
    objects = render(K8S / "overlays" / "production")
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"finmatch"}
    assert set(of_kind(objects, "Namespace")) == {"finmatch"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_strictly(objects: Objects, version: str) -> None:
    for obj in objects:
        # Raises for a schema violation and for a kind/apiVersion the version does not have.
        kubernetes_validate.validate(obj, version, strict=True)


def test_a_broken_object_fails_validation(objects: Objects) -> None:
    deployment = copy.deepcopy(of_kind(objects, "Deployment")["gateway"])
    deployment["spec"]["template"]["spec"]["containers"][0]["port"] = 8000  # not "ports"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    hpa = copy.deepcopy(of_kind(objects, "HorizontalPodAutoscaler")["gateway"])
    hpa["spec"]["minReplicas"] = "three"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(hpa, KUBERNETES_VERSIONS[-1], strict=True)


def test_each_service_runs_with_only_its_own_settings(objects: Objects) -> None:
    seen = set()
    for name, service, container in finmatch_containers(objects):
        seen.add(service)
        env = environment(objects, container)
        known = settings_variables(service)
        unknown = {v for v in env if v.startswith("FINMATCH_")} - set(known)
        assert not unknown, f"{name}: {unknown} are no settings of the {service}"
        assert env["FINMATCH_ENVIRONMENT"] != "development", name
    assert seen == set(SERVICES)


def test_secrets_come_from_the_secret_and_every_server_has_its_own(objects: Objects) -> None:
    for name, service, container in finmatch_containers(objects):
        env = environment(objects, container)
        for variable in placeholder_secrets(service) & set(env):
            assert env[variable].startswith("secret:"), f"{name}: {variable} is a literal"
        if workloads(objects)[name]["kind"] == "Deployment":
            missing = placeholder_secrets(service) - set(env)
            optional = {"FINMATCH_BOOTSTRAP_ADMIN_KEY"}
            if is_dispatcher(container):
                # It serves no API: it hashes no credit code, and is not given the key.
                optional.add("FINMATCH_CREDIT_CODE_HASH_KEY")
            assert missing <= optional, f"{name} lacks {missing}"
    for workload in workloads(objects).values():
        for container in containers(workload):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET_NAME
                    assert ref["key"] in SECRET_KEYS


def test_the_gateway_believes_proxy_headers_from_the_cluster_network_only(
    objects: Objects,
) -> None:
    """The Ingress controller connects from a pod address: https it forwards makes the session
    cookie Secure; no public address may claim the same."""
    [gateway] = [c for _n, s, c in finmatch_containers(objects) if s == "gateway"]
    value = environment(objects, gateway)["FINMATCH_TRUSTED_PROXIES"]
    trusted = GatewaySettings(trusted_proxies=json.loads(value)).trusted_proxies
    assert trusted
    assert all(network.is_private and not network.is_loopback for network in trusted), trusted


def is_dispatcher(container: dict[str, Any]) -> bool:
    """The webhook dispatcher: the registry's image, serving no API, only its metrics."""
    return container.get("args") == DISPATCHER


def test_ports_agree_between_settings_containers_and_services(objects: Objects) -> None:
    deployments = workloads(objects)
    for name, service, container in finmatch_containers(objects):
        env = environment(objects, container)
        if is_dispatcher(container):
            port = int(env.get("FINMATCH_DISPATCHER_METRICS_PORT", 8003))
            assert container_port(container, "metrics") == port
            assert env["FINMATCH_DISPATCHER_METRICS_HOST"] == "0.0.0.0"
        elif deployments[name]["kind"] == "Deployment":
            assert container_port(container, "http") == effective_port(service, env)
            assert env[f"FINMATCH_{service.upper()}_HOST"] == "0.0.0.0"
    for name, svc in of_kind(objects, "Service").items():
        backends = service_backends(objects, svc)
        assert backends, f"Service {name} selects no pods"
        for backend in backends:
            (container,) = containers(deployments[backend])
            for port in svc["spec"]["ports"]:
                # Clients use the Service port with the container's number: keep them equal.
                assert container_port(container, port["targetPort"]) == port["port"], name


def test_urls_name_a_service_that_reaches_that_service(objects: Objects) -> None:
    services = of_kind(objects, "Service")
    deployments = workloads(objects)
    for name, _service, container in finmatch_containers(objects):
        for variable, value in environment(objects, container).items():
            if not variable.endswith("_URL"):
                continue
            url = urlsplit(value.replace("$(POSTGRES_PASSWORD)", "secret"))
            assert url.hostname in services, f"{name}: {variable} names no Service"
            target = services[url.hostname]
            assert url.port in {p["port"] for p in target["spec"]["ports"]}, (name, variable)
            backends = service_backends(objects, target)
            assert backends == {url.hostname}, f"{variable}: {url.hostname} selects {backends}"
            if variable == "FINMATCH_DATABASE_URL":
                (postgres,) = containers(deployments[url.hostname])
                pg_env = {e["name"]: e.get("value") for e in postgres["env"]}
                assert url.username == pg_env["POSTGRES_USER"]
                assert url.path == "/" + pg_env["POSTGRES_DB"]
                # $(POSTGRES_PASSWORD) expands only if defined before this variable.
                names = [e["name"] for e in container["env"]]
                assert names.index("POSTGRES_PASSWORD") < names.index(variable)


def test_probes_hit_real_routes_and_liveness_checks_no_dependency(objects: Objects) -> None:
    for name, service, container in finmatch_containers(objects):
        if workloads(objects)[name]["kind"] != "Deployment":
            continue
        if is_dispatcher(container):
            # Alive and ready while its metrics answer: no receiver or outage restarts it.
            for probe in ("livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
            continue
        routes = get_routes(service)
        expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz"}
        expected["readinessProbe"] = "/readyz"
        for probe, path in expected.items():
            check = container[probe]["httpGet"]
            assert check["path"] == path, f"{name} {probe}"
            assert path in routes, f"{path} is no route of the {service}"
            container_port(container, check["port"])


def test_every_container_has_probes_and_bounded_resources(objects: Objects) -> None:
    for name, workload in workloads(objects).items():
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in containers(workload):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), f"{name} {bound}"
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            if workload["kind"] != "Job":
                assert {"livenessProbe", "readinessProbe"} <= set(container), name


def test_autoscalers_target_deployments_they_own(objects: Objects) -> None:
    deployments = of_kind(objects, "Deployment")
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    assert {a["spec"]["scaleTargetRef"]["name"] for a in autoscalers.values()} == {
        "gateway",
        "matching",
    }
    for name, hpa in autoscalers.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert target["name"] in deployments, f"HPA {name} targets nothing"
        scaled = deployments[target["name"]]
        # A replica count in the manifest would undo the autoscaler at every apply.
        assert "replicas" not in scaled["spec"], target["name"]
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        for container in containers(scaled):
            assert "cpu" in container["resources"]["requests"]  # utilisation needs a request


def test_disruption_budgets_leave_a_replica_to_drain(objects: Objects) -> None:
    deployments = of_kind(objects, "Deployment")
    floors = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]["minReplicas"]
        for hpa in of_kind(objects, "HorizontalPodAutoscaler").values()
    }
    budgets = of_kind(objects, "PodDisruptionBudget")
    assert set(SERVICES) <= {
        n for b in budgets.values() for n in selected(objects, b["spec"]["selector"])
    }
    for name, budget in budgets.items():
        (target,) = selected(objects, budget["spec"]["selector"])
        replicas = floors.get(target, deployments[target]["spec"].get("replicas", 1))
        assert budget["spec"]["minAvailable"] < replicas, f"{name} blocks every drain"


def test_the_migration_job_runs_the_prestart_in_the_registry_image(objects: Objects) -> None:
    jobs = of_kind(objects, "Job")
    (job,) = jobs.values()
    (container,) = containers(job)
    assert container["args"][:2] == ["python", "/app/deploy/prestart.py"]
    (registry,) = containers(of_kind(objects, "Deployment")["registry"])
    assert container["image"] == registry["image"]
    env = environment(objects, container)
    assert env["FINMATCH_DATABASE_URL"] == environment(objects, registry)["FINMATCH_DATABASE_URL"]


def network_problems(objects: Objects) -> list[str]:
    """What is wrong with the NetworkPolicies, as sentences (empty when nothing is)."""
    problems = []
    policies = of_kind(objects, "NetworkPolicy")
    loads = workloads(objects)
    if not any(
        p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies.values()
    ):
        problems.append("no default-deny ingress policy")
    open_to_all: set[str] = set()
    reaching: dict[str, set[str]] = {}
    for name, policy in policies.items():
        targets = selected(objects, policy["spec"]["podSelector"])
        if policy["spec"]["podSelector"] and not targets:
            problems.append(f"{name} selects no pods")
        for rule in policy["spec"].get("ingress", []):
            sources = rule.get("from")
            if not sources:
                open_to_all |= targets
            for source in sources or []:
                if set(source) != {"podSelector"}:
                    open_to_all |= targets  # another namespace or an address block
                    continue
                matched = selected(objects, source["podSelector"])
                if not matched:
                    problems.append(f"{name} admits pods that do not exist")
                for target in targets:
                    reaching.setdefault(target, set()).update(matched)
            for port in rule.get("ports", []):
                for target in targets:
                    declared = {
                        p["containerPort"] for c in containers(loads[target]) for p in c["ports"]
                    }
                    if port["port"] not in declared:
                        problems.append(f"{name}: {target} does not listen on {port['port']}")
    if open_to_all != {"gateway"}:
        problems.append(f"reachable from outside: {sorted(open_to_all)}")
    registry_pods = {
        n for n, w in loads.items() if pod_labels(w)["app.kubernetes.io/name"] == "registry"
    }
    if reaching.get("postgres") != registry_pods:
        problems.append(f"postgres reached by {sorted(reaching.get('postgres', []))}")
    return problems


def test_only_the_gateway_is_reachable_and_only_the_registry_reaches_postgres(
    objects: Objects,
) -> None:
    assert network_problems(objects) == []


def test_a_policy_that_lets_matching_reach_postgres_is_caught(objects: Objects) -> None:
    broken = copy.deepcopy(objects)
    postgres = next(
        o
        for o in broken
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].startswith("postgres")
    )
    postgres["spec"]["ingress"][0]["from"].append(
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "matching"}}}
    )
    assert network_problems(broken) == [
        "postgres reached by ['dispatcher', 'matching', 'registry', 'registry-migrate']"
    ]


def test_the_ingress_keeps_metrics_and_probes_inside() -> None:
    """Prometheus scrapes pods directly; the public Ingress routes the API and dashboard only."""
    [ingress] = [o for o in render(K8S / "overlays" / "production") if o["kind"] == "Ingress"]
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert "/" not in paths
    for private in ("/metrics", "/readyz", "/healthz"):
        assert not any(private.startswith(p) for p in paths), private
    assert any("/v1/stats/overview".startswith(p) for p in paths)
    assert any("/dashboard".startswith(p) for p in paths)
