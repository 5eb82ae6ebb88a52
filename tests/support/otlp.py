"""A minimal OTLP/gRPC receiver that keeps what it gets in memory.

For integration tests: the services export to it exactly as they would to a
collector, and the test reads the spans back as :class:`~support.traces.Span`, and the
metrics and log records as the OTLP requests that carried them.
"""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from .traces import Span

_KINDS = {
    trace_pb2.Span.SPAN_KIND_SERVER: "SERVER",
    trace_pb2.Span.SPAN_KIND_CLIENT: "CLIENT",
    trace_pb2.Span.SPAN_KIND_INTERNAL: "INTERNAL",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "PRODUCER",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "CONSUMER",
}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class _Kept[T]:
    """Every export request of one signal, as received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[T] = []

    def keep(self, request: T) -> None:
        with self._lock:
            self.requests.append(request)

    def all(self) -> list[T]:
        with self._lock:
            return list(self.requests)


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.kept: _Kept[metrics_service_pb2.ExportMetricsServiceRequest] = _Kept()

    def Export(self, request: Any, context: Any) -> Any:
        self.kept.keep(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.kept: _Kept[logs_service_pb2.ExportLogsServiceRequest] = _Kept()

    def Export(self, request: Any, context: Any) -> Any:
        self.kept.keep(request)
        return logs_service_pb2.ExportLogsServiceResponse()


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """Listen on ``127.0.0.1:<port>`` (a free one by default); :attr:`endpoint` is what
    services export to.

    :meth:`stop` and :meth:`restart` play a collector that goes away and comes back on
    the same address; the spans received before are kept.
    """

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._metrics, self._logs = _Metrics(), _Logs()
        self._exports: list[str] = []
        self._server, self.port = self._bind(port)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _bind(self, port: int) -> tuple[grpc.Server, int]:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self._metrics, server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(self._logs, server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        if bound == 0:
            raise OSError(f"cannot listen on 127.0.0.1:{port}")
        return server, bound

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening: exports fail as they would against a dead collector."""
        self._server.stop(grace=None).wait()

    def restart(self) -> None:
        """Listen again on the same port (after :meth:`stop`)."""
        self._server, _ = self._bind(self.port)
        self._server.start()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        # Everything as sent (attributes, events and theirs, links, status message),
        # for tests that look for a value anywhere in a span.
        text = str(request)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Span(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex() or None,
                            name=span.name,
                            kind=_KINDS.get(span.kind, "UNSPECIFIED"),
                            service=str(resource.get("service.name")),
                            attributes={
                                **{f"resource.{k}": v for k, v in resource.items()},
                                **{a.key: _value(a.value) for a in span.attributes},
                            },
                            error=span.status.code == trace_pb2.Status.STATUS_CODE_ERROR,
                            events=tuple(event.name for event in span.events),
                            links=tuple(
                                (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                            ),
                        )
                    )
        with self._lock:
            self._spans.extend(received)
            self._exports.append(text)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self, trace_id: str | None = None) -> list[Span]:
        """Every span received so far, or those of one trace."""
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    def exported_text(self) -> str:
        """Every export request received so far, in protobuf text format."""
        with self._lock:
            return "\n".join(self._exports)

    def trace_ids(self) -> set[str]:
        """The ids of every trace received so far."""
        with self._lock:
            return {s.trace_id for s in self._spans}

    def metric_names(self, service: str) -> set[str]:
        """The names of the metrics ``service`` has exported so far."""
        return {
            metric.name
            for request in self._metrics.kept.all()
            for resource_metrics in request.resource_metrics
            if _service(resource_metrics.resource) == service
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        }

    def log_bodies(self, service: str) -> list[str]:
        """The bodies of the log records ``service`` has exported so far."""
        return [
            record.body.string_value
            for request in self._logs.kept.all()
            for resource_logs in request.resource_logs
            if _service(resource_logs.resource) == service
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records
        ]


def _service(resource: Any) -> Any:
    return next((_value(a.value) for a in resource.attributes if a.key == "service.name"), None)
