"""Build the process's tracer provider from resolved settings.

This is the only module that wires SDK pieces together: resource, sampler, span
processor and exporter. Everything else asks it for a tracer.
"""

from __future__ import annotations

import logging
import socket

from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.semconv._incubating.attributes.host_attributes import HOST_NAME
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME, SERVICE_VERSION

from .config import ResolvedTelemetry
from .export import BatchExportProcessor
from .export_process import ProcessSpanExporter, ReadableSpanExporter
from .tracer import LeanTracerProvider, Sampling

# The OTLP exporters log every failed batch and every retry. Our processor logs the
# first failure and the recovery instead, so a dead collector costs one line, not a
# line per request.
for _noisy in ("opentelemetry.exporter.otlp.proto.grpc", "opentelemetry.exporter.otlp.proto.http"):
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)


def build_sampler(settings: ResolvedTelemetry) -> Sampler:
    """The sampler named by ``OTEL_TRACES_SAMPLER``; parent-based ratio by default."""
    ratio: Sampler = TraceIdRatioBased(settings.sampling_ratio)
    return {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(ratio),
    }[settings.sampler]


def build_resource(settings: ResolvedTelemetry) -> Resource:
    """``service.name``, ``service.version`` and ``host.name``, then ``OTEL_RESOURCE_ATTRIBUTES``.

    The environment is merged last so that an operator's attributes win, except
    ``service.name``, which ``resolve`` has already settled (``OTEL_SERVICE_NAME``
    first, then code).
    """
    own = Resource.create(
        {
            SERVICE_NAME: settings.service_name,
            SERVICE_VERSION: settings.service_version,
            HOST_NAME: socket.gethostname(),
        }
    )
    merged = own.merge(OTELResourceDetector().detect())
    return merged.merge(Resource({SERVICE_NAME: settings.service_name}))


def build_exporter(settings: ResolvedTelemetry) -> SpanExporter:
    """An OTLP exporter over gRPC or HTTP, as the settings say."""
    timeout_s = settings.export_timeout_ms / 1000
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        insecure = not settings.endpoint.startswith("https://")
        return GrpcExporter(endpoint=settings.endpoint, insecure=insecure, timeout=timeout_s)

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    endpoint = settings.endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    return HttpExporter(endpoint=endpoint, timeout=timeout_s)


def build_provider(
    settings: ResolvedTelemetry, exporter: SpanExporter | None = None
) -> tuple[LeanTracerProvider, BatchExportProcessor | None]:
    """A provider for ``settings``; ``exporter`` replaces OTLP (tests pass an in-memory one).

    Sampling follows :func:`build_sampler`'s SDK sampler exactly, decided by
    :class:`~cello_telemetry.tracer.Sampling` without allocating.
    """
    resource = build_resource(settings)
    sampling = Sampling(settings.sampler, settings.sampling_ratio)
    if not settings.export_traces and exporter is None:
        return LeanTracerProvider(resource, sampling, None), None
    if exporter is not None:
        exporter = ReadableSpanExporter(exporter, resource)
    elif settings.export_mode == "process":
        exporter = ProcessSpanExporter(settings, resource)
    else:
        exporter = ReadableSpanExporter(build_exporter(settings), resource)
    processor = BatchExportProcessor(
        exporter,
        schedule_delay_ms=settings.schedule_delay_ms,
        max_queue_size=settings.max_queue_size,
        max_export_batch_size=settings.max_export_batch_size,
    )
    return LeanTracerProvider(resource, sampling, processor), processor
