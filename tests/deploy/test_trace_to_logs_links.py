"""One click from a trace to its logs: Zipkin's Logs button (ZIPKIN_UI_LOGS_URL, with
``{traceId}``) and Jaeger's trace link (deploy/jaeger-ui.json, a "traces" link pattern
with ``#{traceID}``) open VictoriaLogs' UI on the LogsQL query ``trace_id:<id>``, in
compose, natively and in Kubernetes alike. test_native_stack.py checks that the running
Zipkin and Jaeger serve them and that the query finds a trace's log records.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from deploytools import DEPLOY, dotenv

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _zipkin_urls() -> dict[str, str]:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    deployment = next(yaml.safe_load_all((DEPLOY / "k8s" / "base" / "zipkin.yaml").read_text()))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (k8s,) = [e["value"] for e in container["env"] if e["name"] == "ZIPKIN_UI_LOGS_URL"]
    (native,) = re.findall(r'^LOGS_URL="(.*)"$', (DEPLOY / "stack.sh").read_text(), re.MULTILINE)
    port = dotenv()["VICTORIALOGS_PORT"]
    return {
        "compose": compose["services"]["zipkin"]["environment"]["ZIPKIN_UI_LOGS_URL"].replace(
            "${VICTORIALOGS_PORT:-9428}", port
        ),
        "native": native.replace("$VL_PORT", port),
        "kubernetes": k8s,  # through `kubectl port-forward service/victorialogs 9428`
    }


def _jaeger_url() -> str:
    (pattern,) = json.loads((DEPLOY / "jaeger-ui.json").read_text())["linkPatterns"]
    assert pattern["type"] == "traces"  # a link on each trace, not on spans or tags
    assert pattern["text"]
    url: str = pattern["url"]
    return url


def test_every_path_links_a_trace_to_the_same_logs_page() -> None:
    pages = {path: url.replace("{traceId}", TRACE_ID) for path, url in _zipkin_urls().items()}
    pages["jaeger"] = _jaeger_url().replace("#{traceID}", TRACE_ID)
    assert len(set(pages.values())) == 1, pages


def test_the_logs_page_is_victorialogs_ui_filtered_by_the_trace_id() -> None:
    url = urlsplit(_zipkin_urls()["native"].replace("{traceId}", TRACE_ID))
    assert (url.scheme, url.netloc) == ("http", f"127.0.0.1:{dotenv()['VICTORIALOGS_PORT']}")
    assert url.path == "/select/vmui/"
    # The UI routes in the fragment: #/?query=...; trace_id is the field VictoriaLogs'
    # OTLP ingestion gives a log record's trace id.
    route, _, query = url.fragment.partition("?")
    assert route == "/"
    params = parse_qs(query)
    assert params["query"] == [f"trace_id:{TRACE_ID}"]
    assert params["g0.relative_time"] == ["last_24_hours"]  # the UI's default is 5 minutes
    assert params["displayFields"][0].split(",") == ["service.name", "_msg", "trace_id", "span_id"]
