"""The per-process telemetry runtime behind ``App.enable_telemetry``."""

from __future__ import annotations

import logging

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace.export import SpanExporter

from .config import OpenTelemetryConfig, ResolvedTelemetry, resolve
from .export import BatchExportProcessor
from .propagation import W3CTraceContextPropagator
from .provider import build_provider
from .tracer import LeanTracer, LeanTracerProvider

logger = logging.getLogger(__name__)

#: ``traceparent`` / ``tracestate`` (W3C Trace Context Level 2) and W3C ``baggage``.
BAGGAGE = W3CBaggagePropagator()
PROPAGATOR = CompositePropagator([W3CTraceContextPropagator(), BAGGAGE])

INSTRUMENTATION_NAME = "cello_telemetry"


class Telemetry:
    """Tracer provider, tracer and export counters of one service process.

    Built by :meth:`cello_telemetry.App.enable_telemetry`; service code reaches it as
    ``app.telemetry`` only to read :meth:`stats` for a health endpoint.
    """

    def __init__(self, config: OpenTelemetryConfig, exporter: SpanExporter | None = None) -> None:
        self.settings: ResolvedTelemetry = resolve(config)
        self.provider: LeanTracerProvider | None = None
        self._processor: BatchExportProcessor | None = None
        if self.settings.enabled:
            self.provider, self._processor = build_provider(self.settings, exporter)
            self.tracer: LeanTracer = self.provider.get_tracer(INSTRUMENTATION_NAME)
            _install_globals(self.provider)

    @property
    def enabled(self) -> bool:
        """``False`` when ``OTEL_SDK_DISABLED=true``: no spans, no propagation."""
        return self.settings.enabled

    def stats(self) -> dict[str, object]:
        """What ``/health`` reports: the sampler and the span export counters."""
        out: dict[str, object] = {
            "enabled": self.settings.enabled,
            "sampler": self.settings.sampler,
            "sampling_ratio": self.settings.sampling_ratio,
        }
        if self._processor is not None:
            out["spans"] = self._processor.stats.as_dict()
        return out

    def shutdown(self) -> None:
        """Flush pending spans (bounded at 5 s), then stop exporting."""
        if self.provider is None:
            return
        self.provider.shutdown()  # BatchExportProcessor bounds its flush at 5 s
        if self._processor is not None:
            logger.info("telemetry stopped", extra={"spans": self._processor.stats.as_dict()})
        self.provider = None


def _install_globals(provider: LeanTracerProvider) -> None:
    # Libraries that use the global API (the SQLAlchemy instrumentation, a user's own
    # instrumentations) must see the same provider and propagators. The global
    # provider can be set once per process; later Apps (tests) keep their own.
    propagate.set_global_textmap(PROPAGATOR)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
