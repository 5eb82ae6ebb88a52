"""deploy/otel-collector.yaml, checked by the collector binary the native stack runs.

`otelcol validate` loads the file with the real config resolver (env expansion
included), decodes every component's config strictly (unknown keys fail) and runs
each component's own validation, without opening ports.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from deploytools import DEPLOY, dotenv

pytestmark = pytest.mark.integration

CONFIG = DEPLOY / "otel-collector.yaml"
# What deploy/stack.sh sets for the native stack (everything on loopback).
NATIVE_ENV = {
    "OTELCOL_LISTEN_HOST": "127.0.0.1",
    "JAEGER_OTLP_ENDPOINT": "127.0.0.1:14317",
    "ZIPKIN_ENDPOINT": "http://127.0.0.1:9411/api/v2/spans",
}
OUR_VARS = ("OTELCOL_", "JAEGER_", "ZIPKIN_")


def _validate(
    otelcol: Path, config: Path, extra_env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    # Drop any of our variables from the caller's environment: the compose case must
    # see the file's own defaults.
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUR_VARS)}
    env.update(extra_env)
    return subprocess.run(
        [str(otelcol), "validate", f"--config={config}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "extra_env", [pytest.param({}, id="compose-defaults"), pytest.param(NATIVE_ENV, id="native")]
)
def test_collector_validates_the_config(
    tool: Callable[[str], Path], extra_env: dict[str, str]
) -> None:
    done = _validate(tool("otelcol"), CONFIG, extra_env)
    assert done.returncode == 0, done.stderr


def test_validation_is_strict(tool: Callable[[str], Path], tmp_path: Path) -> None:
    """A misspelt key must fail, or the test above would prove nothing."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(CONFIG.read_text().replace("send_batch_size", "send_batch_sise"))
    done = _validate(tool("otelcol"), broken, {})
    assert done.returncode != 0
    assert "send_batch_sise" in done.stderr


def test_built_collector_has_exactly_the_components_in_use(tool: Callable[[str], Path]) -> None:
    out = subprocess.run(
        [str(tool("otelcol")), "components"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    names = set(re.findall(r"^\s*- name: (\S+)", out, re.MULTILINE))
    assert {"otlp", "memory_limiter", "batch", "otlp_grpc", "zipkin", "health_check"} <= names
    assert "jaeger" not in names  # the jaeger exporter is gone since v0.85


def test_every_endpoint_comes_from_the_environment() -> None:
    text = CONFIG.read_text()
    for key in ("endpoint", "host", "port"):
        for value in re.findall(rf"^\s*{key}:\s*(\S+)", text, re.MULTILINE):
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
