"""The stores of the running stack: links for people, presence checks for scripts.

Used by ``make demo``. Traces are read back only through the two backends' documented
HTTP APIs: Jaeger's ``/api/traces/{id}`` and Zipkin's ``/api/v2/trace/{id}``. The links
open a trace in Jaeger and Zipkin, its log records in VictoriaLogs' UI, and the
services' latency graph in VictoriaMetrics' UI.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

import cello_settings as env
from tools.red import HISTOGRAM
from tools.topology import topology

#: VictoriaLogs' UI (LogsQL): the columns the logs link shows, the way Zipkin's Logs
#: button opens it (deploy/stack.sh's ZIPKIN_UI_LOGS_URL).
LOG_FIELDS = "service.name,_msg,trace_id,span_id"
#: The window of the latency graph, in minutes: the tour's requests, and a while before.
GRAPH_MINUTES = 15


def latency_query(services: Iterable[str], quantile: float = 0.99) -> str:
    """PromQL for each service's ``quantile`` request duration, from the services' own
    ``http.server.request.duration`` histograms: what the latency graph draws."""
    names = "|".join(services)
    return (
        f"histogram_quantile({quantile}, sum by (service_name, le) "
        f'(rate({HISTOGRAM}_bucket{{service_name=~"{names}"}}[1m])))'
    )


@dataclass(frozen=True, slots=True)
class Backends:
    """Where the stores answer: ``JAEGER_URL``, ``ZIPKIN_URL``, ``VICTORIALOGS_URL`` and
    ``VICTORIAMETRICS_URL``, by default the native stack's (deploy/.env)."""

    jaeger_url: str
    zipkin_url: str
    logs_url: str
    metrics_url: str

    @classmethod
    def from_env(cls) -> Backends:
        stack = topology()
        return cls(
            jaeger_url=env.env_url("JAEGER_URL", stack.jaeger_url),
            zipkin_url=env.env_url("ZIPKIN_URL", stack.zipkin_url),
            logs_url=env.env_url("VICTORIALOGS_URL", stack.victorialogs_url),
            metrics_url=env.env_url("VICTORIAMETRICS_URL", stack.victoriametrics_url),
        )

    def jaeger_link(self, trace_id: str) -> str:
        """The trace's page in the Jaeger UI."""
        return f"{self.jaeger_url}/trace/{trace_id}"

    def zipkin_link(self, trace_id: str) -> str:
        """The trace's page in the Zipkin UI."""
        return f"{self.zipkin_url}/zipkin/traces/{trace_id}"

    def logs_link(self, trace_id: str) -> str:
        """The trace's log records in VictoriaLogs' UI (LogsQL ``trace_id:<id>``), over the
        last day: the page Zipkin's Logs button opens."""
        return (
            f"{self.logs_url}/select/vmui/#/?query=trace_id:{trace_id}"
            f"&g0.relative_time=last_24_hours&displayFields={LOG_FIELDS}"
        )

    def latency_link(
        self, services: Iterable[str], quantile: float = 0.99, minutes: int = GRAPH_MINUTES
    ) -> str:
        """The graph of each service's ``quantile`` request duration (PromQL over the
        services' own ``http.server.request.duration`` histograms) in VictoriaMetrics' UI,
        over the last ``minutes`` (one of the UI's own ranges: 5, 15 or 30)."""
        expr = latency_query(services, quantile)
        duration, relative = f"{minutes}m", f"last_{minutes}_minutes"
        query = urlencode(
            {
                "g0.expr": expr,
                "g0.range_input": duration,
                "g0.relative_time": relative,
                "g0.tab": "0",
            },
            quote_via=quote,
        )
        return f"{self.metrics_url}/vmui/#/?{query}"

    def unreachable(self, http: httpx.Client) -> list[str]:
        """The backends that do not answer their health or API endpoint."""
        probes = {
            f"Jaeger ({self.jaeger_url})": f"{self.jaeger_url}/api/services",
            f"Zipkin ({self.zipkin_url})": f"{self.zipkin_url}/health",
        }
        return [name for name, url in probes.items() if not _answers(http, url)]

    def zipkin_spans(self, http: httpx.Client, trace_id: str) -> list[dict[str, Any]]:
        """The trace's spans in Zipkin's v2 JSON; empty while Zipkin does not know it."""
        response = http.get(f"{self.zipkin_url}/api/v2/trace/{trace_id}")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        spans: list[dict[str, Any]] = response.json()
        return spans

    def in_jaeger(self, http: httpx.Client, trace_id: str) -> bool:
        """Whether Jaeger has at least one span of the trace."""
        response = http.get(f"{self.jaeger_url}/api/traces/{trace_id}")
        if response.status_code != 200:
            return False
        data = response.json().get("data") or []
        return any(trace.get("spans") for trace in data)

    def wait_in_zipkin(
        self, http: httpx.Client, trace_id: str, services: Iterable[str], timeout: float
    ) -> list[dict[str, Any]]:
        """Poll Zipkin until the trace looks complete; return its spans (maybe partial).

        Complete means: a root span, a span from each of ``services``, and the same
        span count as on the previous poll (each service exports on its own, so the
        last spans can arrive a moment after the first).
        """
        wanted = set(services)
        deadline = time.monotonic() + timeout
        spans: list[dict[str, Any]] = []
        previous = -1
        while time.monotonic() < deadline:
            try:
                spans = self.zipkin_spans(http, trace_id)
            except httpx.HTTPError:
                spans = []
            seen = {span.get("localEndpoint", {}).get("serviceName") for span in spans}
            has_root = any("parentId" not in span for span in spans)
            if has_root and wanted <= seen and len(spans) == previous:
                return spans
            previous = len(spans)
            time.sleep(0.3)
        return spans


def _answers(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.HTTPError:
        return False
