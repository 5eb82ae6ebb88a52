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

import pytest
from deploytools import DEPLOY, dotenv

pytestmark = pytest.mark.integration

CONFIG = DEPLOY / "otel-collector.yaml"
SAMPLING = {mode: DEPLOY / "sampling" / f"{mode}.yaml" for mode in ("head", "tail")}
# What deploy/stack.sh sets for the native stack (everything on loopback).
NATIVE_ENV = {
    "OTELCOL_LISTEN_HOST": "127.0.0.1",
    "JAEGER_OTLP_ENDPOINT": "127.0.0.1:14317",
    "ZIPKIN_ENDPOINT": "http://127.0.0.1:9411/api/v2/spans",
}
OUR_VARS = ("OTELCOL_", "JAEGER_", "ZIPKIN_")


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
    [(CONFIG, "send_batch_size"), (SAMPLING["tail"], "decision_wait")],
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


def test_tail_overlay_puts_tail_sampling_between_the_limiter_and_the_batch(
    tool: Callable[[str], Path],
) -> None:
    """The merged config (lists replace, maps merge) is what the collector runs."""
    done = subprocess.run(
        [str(tool("otelcol")), "print-config", "--mode=unredacted", "--format=json",
         f"--config={CONFIG}", f"--config={SAMPLING['tail']}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    pipelines = json.loads(done.stdout)["service"]["pipelines"]
    assert pipelines["traces"]["processors"] == ["memory_limiter", "tail_sampling", "batch"]
    assert pipelines["traces/span_metrics"]["processors"] == ["memory_limiter"]
    assert pipelines["traces/span_metrics"]["receivers"] == pipelines["traces"]["receivers"]


def test_built_collector_has_exactly_the_components_in_use(tool: Callable[[str], Path]) -> None:
    out = subprocess.run(
        [str(tool("otelcol")), "components"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    names = set(re.findall(r"^\s*- name: (\S+)", out, re.MULTILINE))
    assert {"otlp", "memory_limiter", "batch", "otlp_grpc", "zipkin", "health_check"} <= names
    assert {"tail_sampling", "span_metrics", "prometheus"} <= names
    assert "jaeger" not in names  # the jaeger exporter is gone since v0.85


@pytest.mark.parametrize("config", [DEPLOY / "jaeger.yaml", DEPLOY / "native" / "jaeger.yaml"],
                         ids=["compose", "native"])  # fmt: skip
def test_jaeger_validates_its_config(tool: Callable[[str], Path], config: Path) -> None:
    done = _validate(tool("jaeger"), config, {})
    assert done.returncode == 0, done.stderr


def test_jaeger_validation_is_strict(tool: Callable[[str], Path], tmp_path: Path) -> None:
    broken = tmp_path / "jaeger.yaml"
    text = (DEPLOY / "jaeger.yaml").read_text()
    broken.write_text(text.replace("normalize_calls", "normalise_calls"))
    done = _validate(tool("jaeger"), broken, {})
    assert done.returncode != 0
    assert "normalise_calls" in done.stderr


def test_every_endpoint_comes_from_the_environment() -> None:
    text = CONFIG.read_text()
    values = {
        key: re.findall(rf"^\s*{key}:\s*(\S+)", text, re.MULTILINE)
        for key in ("endpoint", "host", "port")
    }
    # The two OTLP receivers and both exporters at least: else the pattern reads nothing.
    assert len(values["endpoint"]) >= 4, values
    for key, found in values.items():
        for value in found:
            assert value.startswith("${env:"), f"{key}: {value}"
            assert ":-" in value, f"{key}: {value} has no default"


def test_versions_agree_with_deploy_env() -> None:
    env = dotenv()
    manifest = (DEPLOY / "native" / "otelcol-builder.yaml").read_text()
    versions = set(re.findall(r"gomod: \S+ v(\S+)", manifest))
    assert versions == {env["OTELCOL_VERSION"]}
    assert re.search(rf"^\s*version: {re.escape(env['OTELCOL_VERSION'])}$", manifest, re.MULTILINE)
    jaeger_mod = (DEPLOY / "native" / "jaeger" / "go.mod").read_text()
    required = re.findall(r"^\s*github.com/jaegertracing/jaeger (\S+)", jaeger_mod, re.MULTILINE)
    assert required == [env["JAEGER_GO_MODULE_VERSION"]]
