"""deploy/docker-compose.yml, loaded by compose-go: the loader `docker compose` itself
uses (schema validation, interpolation from deploy/.env, normalisation), plus checks
on the resulting model.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploytools import DEPLOY, REPO, dotenv

pytestmark = pytest.mark.integration

COMPOSE = DEPLOY / "docker-compose.yml"
PYTHON_SERVICES = ("gateway", "users", "db")


def _load(composecheck: Path, compose_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(composecheck), "-f", str(compose_file), "--env-file", str(DEPLOY / ".env")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},  # no stray COMPOSE_* or version variables
    )


@pytest.fixture(scope="module")
def model(tool: Callable[[str], Path]) -> dict[str, Any]:
    done = _load(tool("composecheck"), COMPOSE)
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


@pytest.fixture(scope="module")
def services(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = model["services"]
    return loaded


def test_the_loader_rejects_invalid_files(tool: Callable[[str], Path], tmp_path: Path) -> None:
    """The checks below rely on a loader that does validate."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("mem_limit:", "mem_limmit:", 1))
    done = _load(tool("composecheck"), broken)
    assert done.returncode != 0
    assert "mem_limmit" in done.stderr


def test_expected_services(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        *("gateway", "users", "db", "otel-collector", "jaeger", "zipkin", "hc-tools"),
        *("victoriametrics", "victorialogs"),
    }
    assert set(services) == expected


def test_only_gateway_the_uis_and_the_red_metrics_are_published_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {
        (name, int(p["published"]), p["target"], p.get("host_ip"))
        for name, svc in services.items()
        for p in svc.get("ports") or []
    }
    assert published == {
        ("gateway", 8000, 8000, "127.0.0.1"),
        ("jaeger", 16686, 16686, "127.0.0.1"),
        ("zipkin", 9411, 9411, "127.0.0.1"),
        ("victoriametrics", 8428, 8428, "127.0.0.1"),
        ("victorialogs", 9428, 9428, "127.0.0.1"),
        ("otel-collector", 8889, 8889, "127.0.0.1"),
    }
    env = dotenv()  # the native stack binds the same ports (deploy/stack.sh reads them)
    assert (env["VICTORIAMETRICS_PORT"], env["VICTORIALOGS_PORT"]) == ("8428", "9428")


def test_every_container_has_a_healthcheck_a_memory_limit_and_the_shared_logging(
    services: dict[str, dict[str, Any]], model: dict[str, Any]
) -> None:
    for name, svc in services.items():
        health = svc.get("healthcheck") or {}
        assert health.get("test"), name
        assert not health.get("disable"), name
        assert health["test"][0] in ("CMD", "CMD-SHELL"), name
        assert int(svc.get("mem_limit") or 0) > 0, name
        assert svc.get("logging") == model["x-logging"], name


def test_start_order_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "otel-collector": {"jaeger", "zipkin", "victoriametrics", "victorialogs", "hc-tools"},
        "jaeger": {"victoriametrics"},
        "victorialogs": {"hc-tools"},
        "db": {"otel-collector", "postgres"},
        "users": {"db", "otel-collector"},
        "gateway": {"users", "otel-collector"},
    }
    for name, deps in expected.items():
        depends_on = services[name]["depends_on"]
        assert set(depends_on) == deps, name
        for dep, how in depends_on.items():
            want = "service_completed_successfully" if dep == "hc-tools" else "service_healthy"
            assert how["condition"] == want, (name, dep)
            # postgres runs only with its profile; without it db starts on SQLite.
            assert how["required"] is (dep != "postgres"), (name, dep)


def test_postgres_profile_points_db_at_a_pinned_postgres(tool: Callable[[str], Path]) -> None:
    url = "postgresql+asyncpg://cello:cello@postgres:5432/users"
    done = _load(tool("composecheck"), COMPOSE, COMPOSE_PROFILES="postgres", DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    postgres = services["postgres"]
    assert postgres["image"] == f"postgres:{dotenv()['POSTGRES_VERSION']}"
    assert dotenv()["POSTGRES_VERSION"].startswith("15.")
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert [v["target"] for v in postgres["volumes"]] == ["/var/lib/postgresql/data"]
    assert set(postgres["networks"]) == {"backend"}
    assert not postgres.get("ports")
    assert services["db"]["environment"]["DATABASE_URL"] == url


def test_without_the_profile_db_runs_sqlite(services: dict[str, dict[str, Any]]) -> None:
    assert "postgres" not in services
    assert services["db"]["environment"]["DATABASE_URL"].startswith("sqlite+aiosqlite:///")


def test_db_and_users_are_internal_only(
    services: dict[str, dict[str, Any]], model: dict[str, Any]
) -> None:
    assert model["networks"]["backend"]["internal"] is True
    for name in ("db", "users"):
        assert set(services[name]["networks"]) == {"backend"}, name
        assert not services[name].get("ports"), name


def test_images_are_pinned_to_the_versions_in_deploy_env(
    services: dict[str, dict[str, Any]],
) -> None:
    env = dotenv()
    assert services["otel-collector"]["image"] == (
        f"otel/opentelemetry-collector-contrib:{env['OTELCOL_VERSION']}"
    )
    assert services["jaeger"]["image"] == f"jaegertracing/jaeger:{env['JAEGER_VERSION']}"
    assert env["JAEGER_VERSION"].startswith("2.")
    assert services["zipkin"]["image"] == f"openzipkin/zipkin:{env['ZIPKIN_VERSION']}"
    # The tags are the Go module versions deploy/native/build.sh builds (v-prefixed).
    assert services["victoriametrics"]["image"] == (
        f"victoriametrics/victoria-metrics:{env['VICTORIAMETRICS_VERSION']}"
    )
    assert services["victorialogs"]["image"] == (
        f"victoriametrics/victoria-logs:{env['VICTORIALOGS_VERSION']}"
    )
    assert (env["VICTORIAMETRICS_VERSION"], env["VICTORIALOGS_VERSION"]) == ("v1.151.0", "v1.52.2")
    assert (env["JAEGER_VERSION"], env["JAEGER_GO_MODULE_VERSION"]) == ("2.12.0", "v1.75.0")


def test_python_services_are_built_from_the_one_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    ports = {"gateway": "8000", "users": "8001", "db": "8002"}
    for name in PYTHON_SERVICES:
        build = services[name]["build"]
        assert Path(build["context"]) == REPO
        assert build["dockerfile"] == "services/Dockerfile"
        # SERVICE names a folder of services/ holding a project and its package.
        assert build["args"]["SERVICE"] == name
        assert (REPO / "services" / name / "pyproject.toml").is_file()
        assert (REPO / "services" / name / "src" / name / "__main__.py").is_file()
        environment = services[name]["environment"]
        assert environment["HOST"] == "0.0.0.0"
        assert environment["PORT"] == ports[name] == build["args"]["PORT"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert services["gateway"]["environment"]["USERS_SERVICE_URL"] == "http://users:8001"
    assert services["users"]["environment"]["DB_SERVICE_URL"] == "http://db:8002"


def test_collector_gets_our_config(services: dict[str, dict[str, Any]]) -> None:
    mounts = {v["target"]: v for v in services["otel-collector"]["volumes"]}
    assert Path(mounts["/etc/otelcol/config.yaml"]["source"]) == DEPLOY / "otel-collector.yaml"
    assert mounts["/etc/otelcol/config.yaml"]["read_only"] is True
    assert "--config=/etc/otelcol/config.yaml" in services["otel-collector"]["command"]
    assert Path(mounts["/etc/otelcol/sampling"]["source"]) == DEPLOY / "sampling"


@pytest.mark.parametrize("sampling", ["head", "tail"])
def test_sampling_picks_the_collector_overlay(tool: Callable[[str], Path], sampling: str) -> None:
    """SAMPLING from the shell reaches the collector's command; head when unset."""
    done = subprocess.run(
        [str(tool("composecheck")), "-f", str(COMPOSE), "--env-file", str(DEPLOY / ".env")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", **({"SAMPLING": sampling} if sampling == "tail" else {})},
    )
    command = json.loads(done.stdout)["services"]["otel-collector"]["command"]
    assert command[-1] == f"--config=/etc/otelcol/sampling/{sampling}.yaml"
    assert (DEPLOY / "sampling" / f"{sampling}.yaml").is_file()


def test_jaeger_reads_red_metrics_from_victoriametrics(services: dict[str, dict[str, Any]]) -> None:
    mounts = {v["target"]: v for v in services["jaeger"]["volumes"]}
    assert Path(mounts["/etc/jaeger/config.yaml"]["source"]) == DEPLOY / "jaeger.yaml"
    assert Path(mounts["/etc/jaeger/ui.json"]["source"]) == DEPLOY / "jaeger-ui.json"
    assert services["jaeger"]["command"] == ["--config=/etc/jaeger/config.yaml"]
    jaeger = yaml.safe_load((DEPLOY / "jaeger.yaml").read_text())
    query = jaeger["extensions"]["jaeger_query"]
    assert query["ui"]["config_file"] == "/etc/jaeger/ui.json"
    backend = jaeger["extensions"]["jaeger_storage"]["metric_backends"][query["storage"]["metrics"]]
    assert backend["prometheus"]["endpoint"].endswith(":-http://victoriametrics:8428}")


@pytest.mark.parametrize("store", ["victoriametrics", "victorialogs"])
def test_the_stores_run_with_the_native_stacks_flags(
    services: dict[str, dict[str, Any]], store: str
) -> None:
    """The flags deploy/stack.sh passes, but for the data path inside the container."""
    native = _native_flags(store)
    command = services[store]["command"]
    (data,) = [f for f in command if f.startswith("-storageDataPath=")]
    assert data.removeprefix("-storageDataPath=") in {
        v["target"] for v in services[store]["volumes"]
    }
    assert sorted(set(command) - {data}) == sorted(native)
    if store == "victoriametrics":
        # Prometheus names (what Jaeger's Monitor queries), samples visible after 1 s.
        assert {"-opentelemetry.usePrometheusNaming", "-search.latencyOffset=1s"} <= set(native)


def _native_flags(store: str) -> list[str]:
    """The flags of `start <store> -- "$bin" ...` in deploy/stack.sh, less the ones that
    differ by nature natively (listen address, data path)."""
    text = (DEPLOY / "stack.sh").read_text().replace("\\\n", " ")
    (line,) = re.findall(rf"^\s*start {store} -- (.*)$", text, re.MULTILINE)
    flags = [w.strip('"') for w in line.split()[1:]]
    return [f for f in flags if not f.startswith(("-httpListenAddr=", "-storageDataPath="))]
