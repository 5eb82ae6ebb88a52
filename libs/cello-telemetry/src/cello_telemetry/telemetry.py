"""The per-process pipeline behind ``App.enable_telemetry``: stock SDK parts, wired once.

Traces: ``TracerProvider`` with ``ParentBased(TraceIdRatioBased(sampling_rate))`` (or the
sampler ``OTEL_TRACES_SAMPLER`` names), a ``BatchSpanProcessor`` and the OTLP exporter
over gRPC or HTTP. Metrics: ``MeterProvider`` with a ``PeriodicExportingMetricReader`` and
the OTLP metric exporter, and the SDK's default (trace-based) exemplar filter. Both become
the global providers, and the propagators ``OTEL_PROPAGATORS`` names the global
propagator, so every instrumentation and a user's own processors see the same pipeline.
Logs: a ``LoggerProvider`` with a ``BatchLogRecordProcessor`` and the OTLP log exporter,
built only when a service's start-up asks for :meth:`Telemetry.log_handler`.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
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

from .config import (
    OpenTelemetryConfig,
    OtlpTarget,
    ResolvedTelemetry,
    TelemetryConfigError,
    resolve,
)
from .export import CountingSpanExporter
from .logs import RequestIdLogProcessor
from .metrics import ServerMetrics
from .propagation import propagator_for

logger = logging.getLogger(__name__)

INSTRUMENTATION_NAME = "cello_telemetry"
#: How long a shutdown may keep exporting before it gives up on what is left.
SHUTDOWN_SECONDS = 5.0


class Telemetry:
    """Tracer, meter and logger providers and span counters of one service process.

    Built by :meth:`cello_telemetry.App.enable_telemetry`; service code reaches it as
    ``app.telemetry`` to read :meth:`stats` for a health endpoint, and its start-up to
    install :meth:`log_handler`.

    Args:
        config: what the code asks for; the ``OTEL_*`` variables override it.
        exporter: replaces the OTLP span exporter (tests pass an in-memory one).
        metric_reader: replaces the periodic OTLP metric reader (tests pass an
            ``InMemoryMetricReader``); unused while metrics are off.
    """

    def __init__(
        self,
        config: OpenTelemetryConfig,
        exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> None:
        self.settings: ResolvedTelemetry = resolve(config)
        self.provider: TracerProvider | None = None
        #: The service's metrics pipeline; ``None`` while metrics are off.
        self.meter_provider: MeterProvider | None = None
        #: The service's logs pipeline, once :meth:`log_handler` has built it.
        self.logger_provider: LoggerProvider | None = None
        #: The edge's instruments; ``None`` while metrics are off.
        self.server_metrics: ServerMetrics | None = None
        self._exporter: CountingSpanExporter | None = None
        # The SDK's own counters (spans dropped because the queue was full or the
        # processor shut down, spans queued, the exporters' figures) are its internal
        # metrics, recorded when OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true. They go to
        # a reader of our own for /health, never to the service's meter provider.
        self._metrics = InMemoryMetricReader() if self.settings.processor_metrics else None
        self._sdk_meter_provider = MeterProvider(
            metric_readers=[] if self._metrics is None else [self._metrics]
        )
        if not self.settings.enabled:
            return
        try:
            propagate.set_global_textmap(propagator_for(self.settings.propagators))
        except ValueError as exc:
            raise TelemetryConfigError(str(exc)) from None
        self._resource = _resource(self.settings)
        self.provider = TracerProvider(resource=self._resource, sampler=_sampler(self.settings))
        if exporter is not None or self.settings.export_traces:
            self._add_export(exporter)
        self.tracer = self.provider.get_tracer(INSTRUMENTATION_NAME)
        if self.settings.metrics is not None:
            reader = metric_reader or self._metric_reader(self.settings.metrics)
            self.meter_provider = MeterProvider(metric_readers=[reader], resource=self._resource)
            self.server_metrics = ServerMetrics(self.meter_provider.get_meter(INSTRUMENTATION_NAME))
        # The global providers can be set once per process; later Apps (tests) keep their own.
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(self.provider)
            if self.meter_provider is not None:
                metrics.set_meter_provider(self.meter_provider)

    def _metric_reader(self, target: OtlpTarget) -> MetricReader:
        return PeriodicExportingMetricReader(
            _otlp_metric_exporter(target, self._sdk_meter_provider),
            export_interval_millis=self.settings.metric_export_interval_millis,
        )

    def log_handler(self, exporter: LogRecordExporter | None = None) -> logging.Handler | None:
        """A ``logging`` handler that sends records over OTLP, for a service's start-up.

        This package installs it nowhere: the start-up adds it beside its own stderr
        handler. Each record carries the trace and span id of the span current when it
        was logged, the resource (``service.name``...) and ``request.id``. The first call
        builds the pipeline (with ``exporter`` in place of the OTLP log exporter, for
        tests); later calls return handlers on the same one.

        Returns:
            ``None`` when logs are off (``OTEL_LOGS_EXPORTER=none``,
            ``OTEL_SDK_DISABLED=true``) or telemetry has shut down.
        """
        if self.settings.logs is None or self.provider is None:
            return None
        if self.logger_provider is None:
            provider = LoggerProvider(resource=self._resource)
            provider.add_log_record_processor(RequestIdLogProcessor())
            sender = exporter or _otlp_log_exporter(self.settings.logs, self._sdk_meter_provider)
            provider.add_log_record_processor(BatchLogRecordProcessor(sender))
            self.logger_provider = provider
        return LoggingHandler(logger_provider=self.logger_provider)

    def _add_export(self, exporter: SpanExporter | None) -> None:
        assert self.provider is not None
        settings = self.settings
        sender = exporter or _otlp_exporter(settings, self._sdk_meter_provider)
        self._exporter = CountingSpanExporter(sender)
        try:
            processor = BatchSpanProcessor(
                self._exporter,
                schedule_delay_millis=settings.batch_schedule_delay_millis,
                max_queue_size=settings.batch_max_queue_size,
                max_export_batch_size=settings.batch_max_export_batch_size,
                meter_provider=self._sdk_meter_provider,
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
        """Export what is queued (spans at most for ``SHUTDOWN_SECONDS``), then stop.

        Spans first, then the last metrics, then the log records, the line saying
        telemetry stopped among them.
        """
        if self.provider is None:
            return
        if self._exporter is not None:
            self._exporter.stop_exporting_after(SHUTDOWN_SECONDS)
        self.provider.shutdown()
        if self.meter_provider is not None:
            # The SDK raises a bare Exception when a reader runs out of time.
            try:
                self.meter_provider.shutdown(timeout_millis=SHUTDOWN_SECONDS * 1000)
            except Exception as exc:  # noqa: BLE001
                logger.warning("the last metrics were not exported: %s", exc)
        if self._exporter is not None:
            logger.info("telemetry stopped", extra={"spans": self.stats()["spans"]})
        if self.logger_provider is not None:
            self.logger_provider.shutdown()
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


#: After a long outage, a collector that was back could still get nothing from a
#: service (a fault test lost a whole trace sent after it came back): the trace,
#: metric and log exporters' channels share one gRPC
#: subchannel, whose wait between reconnect attempts grows to 120 s, and the exporter's
#: fresh channel after a failure inherits that wait. A subchannel per channel, and a
#: wait of at most 5 s, let export resume within seconds (stock channel options;
#: gRPC wants ints, where the exporter's signature says str).
_GRPC_CHANNEL_OPTIONS: Any = (
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.use_local_subchannel_pool", 1),
)


def _otlp_exporter(settings: ResolvedTelemetry, meter_provider: MeterProvider) -> SpanExporter:
    """The stock OTLP exporter; it reads every ``OTEL_EXPORTER_OTLP_*`` variable itself."""
    timeout = settings.export_timeout
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=settings.endpoint,
            timeout=timeout,
            meter_provider=meter_provider,
            channel_options=_GRPC_CHANNEL_OPTIONS,
        )

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter(
        endpoint=settings.endpoint, timeout=timeout, meter_provider=meter_provider
    )


def _otlp_metric_exporter(target: OtlpTarget, meter_provider: MeterProvider) -> MetricExporter:
    """The stock OTLP metric exporter; it reads the ``OTEL_EXPORTER_OTLP_*`` variables."""
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(
            endpoint=target.endpoint,
            timeout=target.timeout,
            meter_provider=meter_provider,
            channel_options=_GRPC_CHANNEL_OPTIONS,
        )

    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter(
        endpoint=target.endpoint, timeout=target.timeout, meter_provider=meter_provider
    )


def _otlp_log_exporter(target: OtlpTarget, meter_provider: MeterProvider) -> LogRecordExporter:
    """The stock OTLP log exporter; it reads the ``OTEL_EXPORTER_OTLP_*`` variables."""
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(
            endpoint=target.endpoint,
            timeout=target.timeout,
            meter_provider=meter_provider,
            channel_options=_GRPC_CHANNEL_OPTIONS,
        )

    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogExporter,
    )

    return HttpLogExporter(
        endpoint=target.endpoint, timeout=target.timeout, meter_provider=meter_provider
    )
