"""Read traces back from Jaeger and Zipkin: links for people, presence checks for scripts.

Used by ``make demo``. Only the two backends' documented HTTP APIs are used:
Jaeger's ``/api/traces/{id}`` and Zipkin's ``/api/v2/trace/{id}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

import cello_settings as env


@dataclass(frozen=True, slots=True)
class Backends:
    """Where Jaeger and Zipkin answer: ``JAEGER_URL`` (``http://127.0.0.1:16686``)
    and ``ZIPKIN_URL`` (``http://127.0.0.1:9411``)."""

    jaeger_url: str
    zipkin_url: str

    @classmethod
    def from_env(cls) -> Backends:
        return cls(
            jaeger_url=env.env_url("JAEGER_URL", "http://127.0.0.1:16686"),
            zipkin_url=env.env_url("ZIPKIN_URL", "http://127.0.0.1:9411"),
        )

    def jaeger_link(self, trace_id: str) -> str:
        """The trace's page in the Jaeger UI."""
        return f"{self.jaeger_url}/trace/{trace_id}"

    def zipkin_link(self, trace_id: str) -> str:
        """The trace's page in the Zipkin UI."""
        return f"{self.zipkin_url}/zipkin/traces/{trace_id}"

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
