"""An OTLP/gRPC sink in its own process: it counts spans and log records per row of the
benchmark, and accepts metrics.

The benchmark exports real OTLP to it, so the measured service pays the full export
cost (serialisation, gRPC), while the receiving CPU lands on this process and not on
the one being measured. Each row's processes carry ``bench.row`` in their resource
(``OTEL_RESOURCE_ATTRIBUTES``, read by the SDK); ``GET /`` on the status port answers
``{row: spans}`` (``service.name`` where a resource has no ``bench.row``), ``GET /logs``
``{row: log records}``.

Usage: ``python -m bench.otlp_sink GRPC_PORT STATUS_PORT``
"""

from __future__ import annotations

import collections
import json
import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

ROW = "bench.row"


def _row(resource: Any) -> str:
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    return attributes.get(ROW) or attributes.get("service.name", "unknown")


class Sink(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """Accept every trace export and count its spans."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: collections.Counter[str] = collections.Counter()
        self.logs: collections.Counter[str] = collections.Counter()

    def Export(self, request: Any, context: Any) -> Any:
        counts = collections.Counter(
            {
                _row(r.resource): sum(len(s.spans) for s in r.scope_spans)
                for r in request.resource_spans
            }
        )
        with self.lock:
            self.spans.update(counts)
        return trace_service_pb2.ExportTraceServiceResponse()


class LogSink(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    """Accept every log export and count its records on the trace sink."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def Export(self, request: Any, context: Any) -> Any:
        counts = collections.Counter(
            {
                _row(r.resource): sum(len(s.log_records) for s in r.scope_logs)
                for r in request.resource_logs
            }
        )
        with self.sink.lock:
            self.sink.logs.update(counts)
        return logs_service_pb2.ExportLogsServiceResponse()


class MetricSink(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    """Accept every metric export, as a collector does."""

    def Export(self, request: Any, context: Any) -> Any:
        return metrics_service_pb2.ExportMetricsServiceResponse()


def main(grpc_port: int, status_port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    sink = Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(LogSink(sink), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricSink(), server)
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    server.start()

    class Status(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with sink.lock:
                body = json.dumps(dict(sink.logs if self.path == "/logs" else sink.spans)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # no access log on stderr
            pass

    status = ThreadingHTTPServer(("127.0.0.1", status_port), Status)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=status.shutdown).start())
    try:
        status.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=None)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
