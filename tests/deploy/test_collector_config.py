"""deploy/otel-collector.yaml with each sampling overlay, checked by the collector binary
the native stack runs; deploy/jaeger.yaml and deploy/native/jaeger.yaml by Jaeger's.

`otelcol validate` loads the files with the real config resolver (env expansion and the
merge of several --config files included), decodes every component's config strictly
(unknown keys fail) and runs each component's own validation, without opening ports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploytools import DEPLOY, dotenv

pytestmark = pytest.mark.integration

CONFIG = DEPLOY / "otel-collector.yaml"
SAMPLING = {mode: DEPLOY / "sampling" / f"{mode}.yaml" for mode in ("head", "tail")}
# What deploy/stack.sh sets for the native stack (everything on loopback).
NATIVE_ENV = {
    "OTELCOL_LISTEN_HOST": "127.0.0.1",
    "JAEGER_OTLP_ENDPOINT": "127.0.0.1:14317",
    "ZIPKIN_ENDPOINT": "http://127.0.0.1:9411/api/v2/spans",
    "VICTORIAMETRICS_OTLP_ENDPOINT": "http://127.0.0.1:8428/opentelemetry/v1/metrics",
    "VICTORIALOGS_OTLP_ENDPOINT": "http://127.0.0.1:9428/insert/opentelemetry/v1/logs",
}
OUR_VARS = ("OTELCOL_", "JAEGER_", "ZIPKIN_", "VICTORIA", "METRICS_QUERY_URL")


def _validate(
    binary: Path, config: Path, extra_env: dict[str, str], *overlays: Path
) -> subprocess.CompletedProcess[str]:
    # Drop any of our variables from the caller's environment: the compose case must
    # see the file's own defaults.
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUR_VARS)}
    env.update(extra_env)
    return subprocess.run(
        [str(binary), "validate", *(f"--config={path}" for path in (config, *overlays))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("overlay", [(), (SAMPLING["head"],), (SAMPLING["tail"],)],
                         ids=["alone", "head", "tail"])  # fmt: skip
@pytest.mark.parametrize(
    "extra_env", [pytest.param({}, id="compose-defaults"), pytest.param(NATIVE_ENV, id="native")]
)
def test_collector_validates_the_config(
    tool: Callable[[str], Path], extra_env: dict[str, str], overlay: tuple[Path, ...]
) -> None:
    done = _validate(tool("otelcol"), CONFIG, extra_env, *overlay)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("path", "key"),
    [(CONFIG, "flush_timeout"), (SAMPLING["tail"], "decision_wait")],
    ids=["base", "tail-overlay"],
)
def test_validation_is_strict(
    tool: Callable[[str], Path], tmp_path: Path, path: Path, key: str
) -> None:
    """A misspelt key must fail, in the base file and in an overlay, or the test above
    would prove nothing."""
    broken = tmp_path / path.name
    broken.write_text(path.read_text().replace(key, key[:-1] + "x"))
    files = (broken,) if path == CONFIG else (CONFIG, broken)
    done = _validate(tool("otelcol"), *files[:1], {}, *files[1:])
    assert done.returncode != 0
    assert key[:-1] + "x" in done.stderr


def _merged(binary: Path, *overlays: Path) -> dict[str, Any]:
    """The merged config (lists replace, maps merge): what the collector runs."""
    done = subprocess.run(
        [str(binary), "print-config", "--mode=unredacted", "--format=json",
         *(f"--config={path}" for path in (CONFIG, *overlays))],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    merged: dict[str, Any] = json.loads(done.stdout)
    return merged


def test_tail_overlay_puts_tail_sampling_after_the_limiter(tool: Callable[[str], Path]) -> None:
    pipelines = _merged(tool("otelcol"), SAMPLING["tail"])["service"]["pipelines"]
    assert pipelines["traces"]["processors"] == ["memory_limiter", "tail_sampling"]
    assert pipelines["traces/span_metrics"]["processors"] == ["memory_limiter"]
    assert pipelines["traces/span_metrics"]["receivers"] == pipelines["traces"]["receivers"]


def test_each_signal_has_its_pipeline_to_its_store(tool: Callable[[str], Path]) -> None:
    config = _merged(tool("otelcol"), SAMPLING["head"])
    pipelines, exporters = config["service"]["pipelines"], config["exporters"]
    stores = {
        "traces": {"otlp_grpc/jaeger", "zipkin"},
        "metrics": {"otlp_http/victoriametrics"},
        "logs": {"otlp_http/victorialogs"},
    }
    for signal, wanted in stores.items():
        assert pipelines[signal]["receivers"] == ["otlp"], signal
        assert pipelines[signal]["processors"][0] == "memory_limiter", signal
        assert set(pipelines[signal]["exporters"]) == wanted, signal
    # The RED metrics reach VictoriaMetrics too: Jaeger's Monitor tab reads them there.
    assert "otlp_http/victoriametrics" in pipelines["metrics/span_metrics"]["exporters"]
    assert exporters["otlp_http/victoriametrics"]["metrics_endpoint"] == (
        "http://victoriametrics:8428/opentelemetry/v1/metrics"
    )
    assert exporters["otlp_http/victorialogs"]["logs_endpoint"] == (
        "http://victorialogs:9428/insert/opentelemetry/v1/logs"
    )


@pytest.mark.parametrize("sampling", ["head", "tail"])
def test_every_pipeline_batches_in_its_exporters(
    tool: Callable[[str], Path], sampling: str
) -> None:
    """No `batch` processor (deprecated): each exporter that sends batches in its queue."""
    config = _merged(tool("otelcol"), SAMPLING[sampling])
    assert "batch" not in config.get("processors", {})
    used = {e for p in config["service"]["pipelines"].values() for e in p["exporters"]}
    pushing = used - {"prometheus", *config.get("connectors", {})}  # scraped / in-process
    assert pushing == {
        "otlp_grpc/jaeger", "zipkin", "otlp_http/victoriametrics", "otlp_http/victorialogs"
    }  # fmt: skip
    for name in pushing:
        batch = (config["exporters"][name].get("sending_queue") or {}).get("batch")
        assert batch, f"{name}: no sending_queue.batch"
        assert 0 < batch["flush_timeout"] <= 1_000_000_000, name  # ns: at most 1 s
        assert batch["min_size"] <= batch["max_size"], name


def test_built_collector_has_exactly_the_components_in_use(tool: Callable[[str], Path]) -> None:
    """Every component the config names is in the build, and nothing is in it unused
    (but `debug`, kept for troubleshooting)."""
    out = subprocess.run(
        [str(tool("otelcol")), "components"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    built = set(re.findall(r"^\s*- name: (\S+)", out, re.MULTILINE))
    used = set()
    for overlay in SAMPLING.values():
        config = _merged(tool("otelcol"), overlay)
        for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
            used |= {name.partition("/")[0] for name in config.get(kind) or {}}
    assert used <= built, used - built
    assert built - used == {"debug"}
    assert "batch" not in built  # deprecated: the exporters batch
    assert "jaeger" not in built  # the jaeger exporter is gone since v0.85


@pytest.mark.parametrize("config", [DEPLOY / "jaeger.yaml", DEPLOY / "native" / "jaeger.yaml"],
                         ids=["compose", "native"])  # fmt: skip
def test_jaeger_validates_its_config(tool: Callable[[str], Path], config: Path) -> None:
    done = _validate(tool("jaeger"), config, {})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("config", [DEPLOY / "jaeger.yaml", DEPLOY / "native" / "jaeger.yaml"],
                         ids=["compose", "native"])  # fmt: skip
def test_jaeger_batches_in_its_exporter_and_reads_victoriametrics(config: Path) -> None:
    loaded = yaml.safe_load(config.read_text())
    assert "processors" not in loaded
    assert "processors" not in loaded["service"]["pipelines"]["traces"]
    queue = loaded["exporters"]["jaeger_storage_exporter"]["queue"]
    assert queue["enabled"] is True
    assert queue["batch"]["flush_timeout"] == "200ms"
    backend = loaded["extensions"]["jaeger_storage"]["metric_backends"]["victoriametrics"]
    assert loaded["extensions"]["jaeger_query"]["storage"]["metrics"] == "victoriametrics"
    # What VictoriaMetrics names the connector's metrics with -opentelemetry.usePrometheusNaming.
    assert backend["prometheus"]["normalize_calls"] is True
    assert backend["prometheus"]["normalize_duration"] is True
    port = dotenv()["VICTORIAMETRICS_PORT"]
    host = "victoriametrics" if config.parent == DEPLOY else "127.0.0.1"
    assert backend["prometheus"]["endpoint"] == f"${{env:METRICS_QUERY_URL:-http://{host}:{port}}}"


def test_jaeger_validation_is_strict(tool: Callable[[str], Path], tmp_path: Path) -> None:
    broken = tmp_path / "jaeger.yaml"
    text = (DEPLOY / "jaeger.yaml").read_text()
    broken.write_text(text.replace("normalize_calls", "normalise_calls"))
    done = _validate(tool("jaeger"), broken, {})
    assert done.returncode != 0
    assert "normalise_calls" in done.stderr


def test_every_endpoint_comes_from_the_environment() -> None:
    text = CONFIG.read_text()
    found = 0
    for key in (r"(?:\w+_)?endpoint", "host", "port"):  # endpoint, metrics_endpoint, ...
        for value in re.findall(rf"^\s*{key}:\s*(\S+)", text, re.MULTILINE):
            found += 1
            assert value.startswith("${env:"), f"{key}: {value}"
            assert ":-" in value, f"{key}: {value} has no default"
    assert found == 10  # health, 2 OTLP in, 4 exporters, the scrape page, own metrics (2)


def test_jaeger_tools_module_requires_what_the_release_requires() -> None:
    """deploy/native/jaeger/go.mod pins JAEGER_GO_MODULE_VERSION and, for every module
    both list, the version that Jaeger's own go.mod at that release requires: the build
    is the release's, not the release's code on other dependencies."""
    version = dotenv()["JAEGER_GO_MODULE_VERSION"]
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"github.com/jaegertracing/jaeger@{version}"],
        cwd=DEPLOY / "native" / "jaeger", capture_output=True, text=True, timeout=300,
        check=False, env={**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/local/go/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    upstream = _requirements(Path(json.loads(done.stdout)["GoMod"]).read_text())
    ours = _requirements((DEPLOY / "native" / "jaeger" / "go.mod").read_text())
    assert ours.pop("github.com/jaegertracing/jaeger") == version
    assert len(ours) > 300
    assert {m: v for m, v in ours.items() if upstream.get(m) != v} == {}


def _requirements(go_mod: str) -> dict[str, str]:
    return dict(re.findall(r"^\t(\S+) (v\S+)", go_mod, re.MULTILINE))


def test_versions_agree_with_deploy_env() -> None:
    env = dotenv()
    manifest = (DEPLOY / "native" / "otelcol-builder.yaml").read_text()
    versions = set(re.findall(r"gomod: \S+ v(\S+)", manifest))
    assert versions == {env["OTELCOL_VERSION"]}
    assert re.search(rf"^\s*version: {re.escape(env['OTELCOL_VERSION'])}$", manifest, re.MULTILINE)
    jaeger_mod = (DEPLOY / "native" / "jaeger" / "go.mod").read_text()
    required = re.findall(r"^\s*github.com/jaegertracing/jaeger (\S+)", jaeger_mod, re.MULTILINE)
    assert required == [env["JAEGER_GO_MODULE_VERSION"]]
