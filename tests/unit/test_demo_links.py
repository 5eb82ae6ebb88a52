"""tools.backends: the links ``make demo`` prints beside each trace and at the end."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tools.backends import Backends
from tools.topology import topology

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
STACK = Path(__file__).resolve().parents[2] / "deploy" / "stack.sh"


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> Backends:
    for name in ("JAEGER_URL", "ZIPKIN_URL", "VICTORIALOGS_URL", "VICTORIAMETRICS_URL"):
        monkeypatch.delenv(name, raising=False)
    return Backends.from_env()


def test_the_logs_link_is_the_page_zipkins_logs_button_opens(backends: Backends) -> None:
    (native,) = re.findall(r'^LOGS_URL="(.*)"$', STACK.read_text(), re.MULTILINE)
    button = native.replace("$VL_PORT", str(topology().victorialogs_port))
    assert backends.logs_link(TRACE_ID) == button.replace("{traceId}", TRACE_ID)


def test_the_latency_link_graphs_each_services_p99_in_victoriametrics_ui(
    backends: Backends,
) -> None:
    url = urlsplit(backends.latency_link(topology().services))
    assert f"{url.scheme}://{url.netloc}" == topology().victoriametrics_url
    assert url.path == "/vmui/"
    route, _, query = url.fragment.partition("?")
    assert route == "/"  # vmui routes in the fragment; its home page is the graph
    params = {key: value for key, (value,) in parse_qs(query).items()}
    assert params == {
        "g0.expr": "histogram_quantile(0.99, sum by (service_name, le) "
        '(rate(http_server_request_duration_seconds_bucket{service_name=~"api-gateway|'
        'user-service|db-proxy"}[1m])))',
        "g0.range_input": "15m",
        "g0.relative_time": "last_15_minutes",
        "g0.tab": "0",  # the graph, not the table
    }
    # Every character PromQL needs and a URL reserves is escaped.
    assert not set(query) & set(' "{}|()')


def test_the_store_urls_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VICTORIALOGS_URL", "http://logs:9428")
    monkeypatch.setenv("VICTORIAMETRICS_URL", "http://metrics:8428")
    moved = Backends.from_env()
    assert moved.logs_link(TRACE_ID).startswith("http://logs:9428/select/vmui/#/?query=trace_id:")
    assert moved.latency_link(["api-gateway"]).startswith("http://metrics:8428/vmui/#/?g0.expr=")
