"""deploy/k8s, rendered by kustomize and checked offline.

Each overlay is rendered with deploy/k8s/render.sh (the command the README gives),
using the kustomize that deploy/native/build.sh builds from its Go module. Every
object is validated against the Kubernetes OpenAPI schemas that kubernetes-validate
bundles, strictly (unknown fields fail), for ``K8S_VERSION``. The other tests check
the model: probes, limits and non-root containers, image tags from deploy/.env, the
collector configuration, references, network policies and what each overlay changes.
No cluster and no network are needed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploytools import BUILD, DEPLOY, dotenv

pytestmark = pytest.mark.integration

K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "scale")
# The Kubernetes release whose API schemas the manifests must satisfy.
K8S_VERSION = "1.35"
NAMESPACE = "cello-tracing"
SERVICES = {"gateway": 8000, "users": 8001, "db": 8002}
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")

Obj = dict[str, Any]


@pytest.fixture(scope="session")
def kustomize() -> Path:
    """The cached kustomize; built on first use; skipped where Go is missing."""
    cached = subprocess.run(
        [str(BUILD), "cached", "kustomize"], capture_output=True, text=True, check=False
    )
    if cached.returncode != 0:
        missing = subprocess.run(
            [str(BUILD), "check", "kustomize"], capture_output=True, text=True, check=False
        )
        if missing.returncode != 0:
            pytest.skip(f"kustomize is not built and cannot be: {missing.stderr.strip()}")
    done = subprocess.run(
        [str(BUILD), "path", "kustomize"], capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/native/build.sh path kustomize failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def render(kustomize: Path, overlay: str) -> list[Obj]:
    done = subprocess.run(
        [str(K8S / "render.sh"), overlay],
        env={**os.environ, "KUSTOMIZE": str(kustomize)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest, kustomize: Path) -> list[Obj]:
    rendered = render(kustomize, request.param)
    assert rendered, f"{request.param} rendered nothing"
    return rendered


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def workloads(objects: list[Obj]) -> list[Obj]:
    """Every Deployment, DaemonSet and StatefulSet; the three services' among them, so a
    check over all of them never passes on none."""
    found = [o for o in objects if o["kind"] in WORKLOAD_KINDS]
    assert {o["metadata"]["name"] for o in found} >= set(SERVICES), "a service has no workload"
    return found


def containers(objects: list[Obj]) -> Iterator[tuple[str, Obj, Obj]]:
    """(workload name, pod spec, container) for every container, init containers too."""
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield workload["metadata"]["name"], pod, container


def env_of(container: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# --- schemas ------------------------------------------------------------------------


def test_every_object_matches_the_kubernetes_schema(objects: list[Obj]) -> None:
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where}: {e.message} at {list(e.absolute_path)}")


def test_schema_validation_rejects_a_broken_object(objects: list[Obj]) -> None:
    """The test above relies on a validator that does reject things."""
    broken = yaml.safe_load(yaml.safe_dump(find(objects, "Deployment", "gateway")))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


# --- every container ------------------------------------------------------------------


def test_every_container_has_probes_requests_and_limits(objects: list[Obj]) -> None:
    for workload, _, c in containers(objects):
        where = f"{workload}/{c['name']}"
        assert c.get("livenessProbe"), f"{where}: no livenessProbe"
        assert c.get("readinessProbe"), f"{where}: no readinessProbe"
        for bound in ("requests", "limits"):
            assert set(c.get("resources", {}).get(bound, {})) >= {"cpu", "memory"}, (
                f"{where}: resources.{bound} needs cpu and memory"
            )


def test_every_container_runs_as_non_root_on_a_read_only_root(objects: list[Obj]) -> None:
    for workload, pod, c in containers(objects):
        where = f"{workload}/{c['name']}"
        effective = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
        assert effective.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        assert effective.get("runAsUser", 0) > 0, f"{where}: runAsUser must be a non-root uid"
        assert effective.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem"
        assert effective.get("allowPrivilegeEscalation") is False, f"{where}: escalation"
        assert effective.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: caps"
        assert effective.get("seccompProfile", {}).get("type") == "RuntimeDefault", where


def test_the_services_probe_health_and_export_through_the_node_agent(objects: list[Obj]) -> None:
    agent = find(objects, "Service", "otel-agent")
    assert agent["spec"]["internalTrafficPolicy"] == "Local"
    for name, port in SERVICES.items():
        c = find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert c["ports"] == [{"name": "http", "containerPort": port}], name
        # Alive is not ready: a db whose pool is saturated or whose database is frozen
        # gets no traffic (readiness), but is not restarted for it (liveness).
        assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}, name
        assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}, name
        env = env_of(c)
        assert env["HOST"] == "0.0.0.0", name
        assert env["PORT"] == str(port), name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-agent:4317", name
        assert env["OTEL_SERVICE_NAME"], name
        assert "k8s.pod.name=$(K8S_POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"], name
    users = find(objects, "Deployment", "users")["spec"]["template"]["spec"]["containers"][0]
    gateway = find(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(gateway)["USERS_SERVICE_URL"] == "http://users:8001"
    assert env_of(users)["DB_SERVICE_URL"] == "http://db:8002"


def test_image_tags_are_those_of_deploy_env(objects: list[Obj]) -> None:
    env = dotenv()
    prefix, tag = env["SERVICE_IMAGE_PREFIX"], env["SERVICE_IMAGE_TAG"]
    expected = {f"{prefix}-{name}": tag for name in SERVICES} | {
        "otel/opentelemetry-collector-contrib": env["OTELCOL_VERSION"],
        "jaegertracing/jaeger": env["JAEGER_VERSION"],
        "openzipkin/zipkin": env["ZIPKIN_VERSION"],
        "victoriametrics/victoria-metrics": env["VICTORIAMETRICS_VERSION"],
        "victoriametrics/victoria-logs": env["VICTORIALOGS_VERSION"],
        "postgres": env["POSTGRES_VERSION"],
    }
    for workload, _, c in containers(objects):
        repository, _, image_tag = c["image"].rpartition(":")
        assert repository in expected, f"{workload}: image {c['image']} is not in deploy/.env"
        assert image_tag == expected[repository], (
            f"{workload}: {c['image']}, deploy/.env says {expected[repository]}: "
            "update `images:` in deploy/k8s (base or overlay kustomization.yaml)"
        )


# --- the collector ---------------------------------------------------------------------


def _mounted_config(objects: list[Obj], workload: Obj) -> str:
    """The config.yaml that ``--config`` names, read from the ConfigMap mounted there."""
    pod = workload["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    (arg,) = [a for a in c["args"] if a.startswith("--config=")]
    path = Path(arg.removeprefix("--config="))
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == str(path.parent)]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    configmap = find(objects, "ConfigMap", volume["configMap"]["name"])
    text: str = configmap["data"][path.name]
    return text


@pytest.mark.parametrize(
    ("copy", "original"),
    [("otel-collector-config.yaml", "otel-collector.yaml"),
     ("jaeger-config.yaml", "jaeger.yaml"),
     ("jaeger-ui.json", "jaeger-ui.json")],
)  # fmt: skip
def test_the_base_holds_byte_identical_copies_of_the_deploy_configs(
    copy: str, original: str
) -> None:
    """kustomize loads no file from outside the kustomization's tree unless told to by a
    flag, which `kubectl apply -k` does not take: hence copies. Edit deploy/<original>,
    then copy it over deploy/k8s/base/<copy>."""
    assert (K8S / "base" / copy).read_bytes() == (DEPLOY / original).read_bytes(), (
        f"deploy/k8s/base/{copy} differs from deploy/{original}: cp deploy/{original} "
        f"deploy/k8s/base/{copy}"
    )


def test_render_needs_no_load_restrictor_flag() -> None:
    """`kubectl apply -k deploy/k8s/overlays/dev` as it is: render.sh (which every test
    here renders with) passes kustomize no flag, and no kustomization reaches outside
    deploy/k8s."""
    assert "load-restrictor" not in (K8S / "render.sh").read_text()
    for kustomization in K8S.rglob("kustomization.yaml"):
        loaded = yaml.safe_load(kustomization.read_text())
        generators = loaded.get("configMapGenerator", []) + loaded.get("secretGenerator", [])
        files = [
            f.partition("=")[2] or f
            for generator in generators
            for f in generator.get("files", []) + generator.get("envs", [])
        ]
        for path in loaded.get("resources", []) + files:
            resolved = (kustomization.parent / path).resolve()
            assert resolved.is_relative_to(K8S), f"{kustomization}: {path} is outside deploy/k8s"


def test_the_collector_runs_the_file_the_native_stack_validates(objects: list[Obj]) -> None:
    """Byte for byte deploy/otel-collector.yaml, which test_collector_config.py checks
    with `otelcol validate` under its own defaults: the case here, since the
    Deployment sets none of the file's variables."""
    gateway = find(objects, "Deployment", "otel-collector")
    assert _mounted_config(objects, gateway) == (DEPLOY / "otel-collector.yaml").read_text()
    (c,) = gateway["spec"]["template"]["spec"]["containers"]
    assert not [
        v for v in env_of(c) if v.startswith(("OTELCOL_", "JAEGER_", "ZIPKIN_", "VICTORIA"))
    ]


def test_jaeger_runs_the_compose_config_with_its_ui_config(objects: list[Obj]) -> None:
    """deploy/jaeger.yaml (validated by test_collector_config.py) and its UI config, at
    the paths the config names; its metrics backend is the victoriametrics Service."""
    jaeger = find(objects, "Deployment", "jaeger")
    assert _mounted_config(objects, jaeger) == (DEPLOY / "jaeger.yaml").read_text()
    pod = jaeger["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    configmap = find(objects, "ConfigMap", volume["configMap"]["name"])
    assert configmap["data"]["ui.json"] == (DEPLOY / "jaeger-ui.json").read_text()
    config = yaml.safe_load(configmap["data"]["config.yaml"])
    assert config["extensions"]["jaeger_query"]["ui"]["config_file"] == "/etc/jaeger/ui.json"
    assert find(objects, "Service", "victoriametrics")["spec"]["ports"][0]["port"] == 8428


@pytest.mark.parametrize("store", ["victoriametrics", "victorialogs"])
def test_the_stores_run_with_the_compose_flags(objects: list[Obj], store: str) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"][store]
    (c,) = find(objects, "Deployment", store)["spec"]["template"]["spec"]["containers"]
    assert c["args"] == compose["command"]
    (data,) = [a.removeprefix("-storageDataPath=") for a in c["args"] if "storageDataPath" in a]
    assert [m["mountPath"] for m in c["volumeMounts"]] == [data]


def test_the_agent_config_passes_the_collectors_own_validation(
    objects: list[Obj], tool: Callable[[str], Path], tmp_path: Path
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(_mounted_config(objects, find(objects, "DaemonSet", "otel-agent")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    done = subprocess.run(
        [str(tool("otelcol")), "validate", f"--config={config}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# --- wiring -------------------------------------------------------------------------


def test_every_namespaced_object_is_in_the_demo_namespace(objects: list[Obj]) -> None:
    assert find(objects, "Namespace", NAMESPACE)
    for obj in objects:
        if obj["kind"] != "Namespace":
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            assert obj["metadata"].get("namespace") == NAMESPACE, where


def _references(pod: Obj, container: Obj) -> Iterator[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret the container reads."""
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            yield "ConfigMap", source["configMapRef"]["name"]
        if "secretRef" in source:
            yield "Secret", source["secretRef"]["name"]
    for var in container.get("env", []):
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key in var.get("valueFrom", {}):
                yield kind, var["valueFrom"][key]["name"]


def test_every_reference_names_an_object_in_the_render(objects: list[Obj]) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])} | {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }
        for c in pod["containers"]:
            where = f"{workload['metadata']['name']}/{c['name']}"
            for ref in _references(pod, c):
                assert ref in names, f"{where} refers to a missing {ref}"
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{where}: no volume {mount['name']}"


def test_every_service_selects_a_workload_and_its_named_ports(objects: list[Obj]) -> None:
    for svc in (o for o in objects if o["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        matching = [
            w
            for w in workloads(objects)
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, f"Service/{svc['metadata']['name']} selects {len(matching)}"
        ports = {
            p["name"]
            for c in matching[0]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports, (svc["metadata"]["name"], port)


def _peer(peer: Obj) -> str:
    """An ingress source by its app name; "outside" for anything beyond this namespace."""
    if set(peer) != {"podSelector"}:  # a namespaceSelector or an ipBlock
        return "outside"
    labels = peer["podSelector"].get("matchLabels", {})
    name: str = labels.get("app.kubernetes.io/name") or labels.get(
        "app.kubernetes.io/component", "any pod here"
    )
    return name


def _ingress_sources(objects: list[Obj]) -> dict[str, set[str]]:
    """Target app name -> the sources let in ("*": anyone, in or out of the cluster)."""
    allowed: dict[str, set[str]] = {}
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):
        labels = policy["spec"]["podSelector"].get("matchLabels", {})
        target = labels.get("app.kubernetes.io/name", "every pod")
        for rule in policy["spec"].get("ingress", []):
            sources = allowed.setdefault(target, set())
            sources |= {_peer(p) for p in rule["from"]} if "from" in rule else {"*"}
    return allowed


def test_network_policies_open_only_the_gateway_to_the_outside(objects: list[Obj]) -> None:
    deny = find(objects, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    expected = {
        "gateway": {"*"},
        "users": {"gateway"},
        "db": {"users"},
        "otel-agent": {"service"},
        "otel-collector": {"otel-agent"},
        "jaeger": {"otel-collector"},
        "zipkin": {"otel-collector"},
        "victoriametrics": {"otel-collector", "jaeger"},
        "victorialogs": {"otel-collector"},
    }
    if any(o["kind"] == "StatefulSet" and o["metadata"]["name"] == "postgres" for o in objects):
        expected["postgres"] = {"db"}
    assert _ingress_sources(objects) == expected
    for w in workloads(objects):
        assert w["metadata"]["name"] in expected, f"{w['metadata']['name']}: no NetworkPolicy"


# --- overlays -------------------------------------------------------------------------


def _replicas(objects: list[Obj]) -> dict[str, int]:
    return {
        o["metadata"]["name"]: o["spec"]["replicas"] for o in objects if o["kind"] == "Deployment"
    }


def _database_url(objects: list[Obj]) -> str:
    db = find(objects, "Deployment", "db")["spec"]["template"]["spec"]["containers"][0]
    return env_of(db)["DATABASE_URL"]


def test_dev_runs_one_of_everything_in_memory(kustomize: Path) -> None:
    objects = render(kustomize, "dev")
    assert set(_replicas(objects).values()) == {1}
    assert _database_url(objects).startswith("sqlite+aiosqlite:////")
    assert not [o for o in objects if o["kind"] in ("StatefulSet", "PersistentVolumeClaim")]


def test_scale_runs_replicas_with_db_on_postgres(kustomize: Path) -> None:
    objects = render(kustomize, "scale")
    replicas = _replicas(objects)
    for name in ("gateway", "users", "db", "otel-collector"):
        assert replicas[name] > 1, name
    # Storage per pod (in memory, or on an emptyDir).
    assert replicas["jaeger"] == replicas["zipkin"] == 1
    assert replicas["victoriametrics"] == replicas["victorialogs"] == 1
    url = _database_url(objects)
    assert url.startswith("postgresql+asyncpg://"), url
    assert url.rpartition("@")[2].startswith("postgres:5432/"), url
    assert find(objects, "Service", "postgres")
    postgres = find(objects, "StatefulSet", "postgres")
    assert postgres["spec"]["volumeClaimTemplates"], "PostgreSQL data needs a volume claim"
    db_pod = find(objects, "Deployment", "db")["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in db_pod["volumes"]}, "SQLite volume left behind"
