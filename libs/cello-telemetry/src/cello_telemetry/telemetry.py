"""The per-process pipeline behind ``App.enable_telemetry``: stock SDK parts, wired once.

``TracerProvider`` with ``ParentBased(TraceIdRatioBased(sampling_rate))`` (or the sampler
``OTEL_TRACES_SAMPLER`` names), a ``BatchSpanProcessor`` and the OTLP exporter over gRPC
or HTTP. It becomes the global provider, and the propagators ``OTEL_PROPAGATORS`` names
become the global propagator, so every instrumentation and a user's own processors see
the same pipeline.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.semconv._incubating.attributes.host_attributes import HOST_NAME
from opentelemetry.semconv._incubating.metrics.otel_metrics import (
    OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
    OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME, SERVICE_VERSION

from .config import OpenTelemetryConfig, ResolvedTelemetry, TelemetryConfigError, resolve
from .export import CountingSpanExporter
from .propagation import propagator_for

logger = logging.getLogger(__name__)

INSTRUMENTATION_NAME = "cello_telemetry"
#: How long a shutdown may keep exporting before it gives up on what is left.
SHUTDOWN_SECONDS = 5.0


class Telemetry:
    """Tracer provider, tracer and span counters of one service process.

    Built by :meth:`cello_telemetry.App.enable_telemetry`; service code reaches it as
    ``app.telemetry`` to read :meth:`stats` for a health endpoint.

    Args:
        config: what the code asks for; the ``OTEL_*`` variables override it.
        exporter: replaces the OTLP exporter (tests pass an in-memory one).
    """

    def __init__(self, config: OpenTelemetryConfig, exporter: SpanExporter | None = None) -> None:
        self.settings: ResolvedTelemetry = resolve(config)
        self.provider: TracerProvider | None = None
        self._exporter: CountingSpanExporter | None = None
        self._metrics: InMemoryMetricReader | None = None
        self._meter_provider: MeterProvider | None = None
        if not self.settings.enabled:
            return
        try:
            propagate.set_global_textmap(propagator_for(self.settings.propagators))
        except ValueError as exc:
            raise TelemetryConfigError(str(exc)) from None
        self.provider = TracerProvider(
            resource=_resource(self.settings), sampler=_sampler(self.settings)
        )
        if exporter is not None or self.settings.export_traces:
            self._add_export(exporter)
        self.tracer = self.provider.get_tracer(INSTRUMENTATION_NAME)
        # The global provider can be set once per process; later Apps (tests) keep their own.
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(self.provider)

    def _add_export(self, exporter: SpanExporter | None) -> None:
        assert self.provider is not None
        settings = self.settings
        # The batch processor's own counters (spans dropped because the queue was full or
        # the processor shut down, spans queued) are the SDK's internal metrics, recorded
        # when OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true. They go to a reader of our
        # own, never to the global meter provider.
        if settings.processor_metrics:
            self._metrics = InMemoryMetricReader()
        self._meter_provider = MeterProvider(
            metric_readers=[] if self._metrics is None else [self._metrics]
        )
        sender = exporter or _otlp_exporter(settings, self._meter_provider)
        self._exporter = CountingSpanExporter(sender)
        try:
            processor = BatchSpanProcessor(
                self._exporter,
                schedule_delay_millis=settings.batch_schedule_delay_millis,
                max_queue_size=settings.batch_max_queue_size,
                max_export_batch_size=settings.batch_max_export_batch_size,
                meter_provider=self._meter_provider,
            )
        except ValueError as exc:
            raise TelemetryConfigError(f"OTEL_BSP_* settings: {exc}") from None
        self.provider.add_span_processor(processor)

    @property
    def enabled(self) -> bool:
        """``False`` when ``OTEL_SDK_DISABLED=true``: no spans, no propagation."""
        return self.settings.enabled

    def stats(self) -> dict[str, object]:
        """What ``/health`` reports: the sampler and the span counters.

        ``exported`` and ``dropped_export_failed`` are always counted; the batch
        processor's ``dropped_queue_full``, ``dropped_after_shutdown`` and ``pending`` are
        ``None`` unless ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true`` has the SDK
        record them.
        """
        out: dict[str, object] = {
            "enabled": self.settings.enabled,
            "sampler": self.settings.sampler,
            "sampling_ratio": self.settings.sampling_ratio,
        }
        if self._exporter is not None:
            out["spans"] = {
                "exported": self._exporter.exported,
                "dropped_export_failed": self._exporter.failed,
                **self._processor_counts(),
            }
        return out

    def _processor_counts(self) -> Mapping[str, int | None]:
        if self._metrics is None:
            return {"dropped_queue_full": None, "dropped_after_shutdown": None, "pending": None}
        counts = {"dropped_queue_full": 0, "dropped_after_shutdown": 0, "pending": 0}
        data = self._metrics.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points: Any = metric.data.data_points
                    if metric.name == OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE:
                        counts["pending"] += sum(int(p.value) for p in points)
                    elif metric.name == OTEL_SDK_PROCESSOR_SPAN_PROCESSED:
                        for point in points:
                            error = (point.attributes or {}).get(ERROR_TYPE)
                            if error == "queue_full":
                                counts["dropped_queue_full"] += int(point.value)
                            elif error == "already_shutdown":
                                counts["dropped_after_shutdown"] += int(point.value)
        return counts

    def shutdown(self) -> None:
        """Export what is queued (at most for ``SHUTDOWN_SECONDS``), then stop."""
        if self.provider is None:
            return
        if self._exporter is not None:
            self._exporter.stop_exporting_after(SHUTDOWN_SECONDS)
        self.provider.shutdown()
        if self._exporter is not None:
            logger.info("telemetry stopped", extra={"spans": self.stats()["spans"]})
        # The in-memory metrics stay readable: a request still running ends its span
        # after this, and /health counts it as dropped after shutdown.
        self.provider = None


def _sampler(settings: ResolvedTelemetry) -> Sampler | None:
    # None: OTEL_TRACES_SAMPLER is set, and the SDK builds the sampler it names.
    if settings.sampler_from_env or settings.sampling_ratio is None:
        return None
    return ParentBased(TraceIdRatioBased(settings.sampling_ratio))


def _resource(settings: ResolvedTelemetry) -> Resource:
    """Ours first, then ``OTEL_RESOURCE_ATTRIBUTES``; ``service.name`` as resolved."""
    own = Resource.create(
        {
            SERVICE_NAME: settings.service_name,
            SERVICE_VERSION: settings.service_version,
            HOST_NAME: socket.gethostname(),
        }
    )
    merged = own.merge(OTELResourceDetector().detect())
    return merged.merge(Resource({SERVICE_NAME: settings.service_name}))


def _otlp_exporter(settings: ResolvedTelemetry, meter_provider: MeterProvider) -> SpanExporter:
    """The stock OTLP exporter; it reads every ``OTEL_EXPORTER_OTLP_*`` variable itself."""
    timeout = settings.export_timeout
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=settings.endpoint, timeout=timeout, meter_provider=meter_provider
        )

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    endpoint = settings.endpoint
    if endpoint is not None and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return HttpSpanExporter(endpoint=endpoint, timeout=timeout, meter_provider=meter_provider)
