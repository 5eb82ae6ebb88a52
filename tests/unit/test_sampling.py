"""The lean sampler decides exactly as the SDK sampler of the same name."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from cello_telemetry.config import OpenTelemetryConfig, SamplerName, resolve
from cello_telemetry.provider import build_sampler
from cello_telemetry.tracer import Sampling

SAMPLERS = sorted(SamplerName.__args__)  # every name OTEL_TRACES_SAMPLER accepts


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("ratio", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_decisions_match_the_sdk_sampler(sampler: str, ratio: float) -> None:
    settings = resolve(
        OpenTelemetryConfig(service_name="unit", sampling_rate=ratio),
        env={"OTEL_TRACES_SAMPLER": sampler},
    )
    sdk, lean = build_sampler(settings), Sampling(settings.sampler, settings.sampling_ratio)
    rng = random.Random(7)
    kept = 0
    for _ in range(2000):
        trace_id = rng.getrandbits(128) or 1
        parent: SpanContext | None = None
        context = None
        if rng.random() < 0.5:  # half the spans continue a remote caller's trace
            flags = TraceFlags(rng.choice([0x00, 0x01]))
            parent = SpanContext(trace_id, rng.getrandbits(64) or 1, True, flags)
            context = set_span_in_context(NonRecordingSpan(parent))
        expected = (
            sdk.should_sample(context, trace_id, "span").decision is Decision.RECORD_AND_SAMPLE
        )
        assert lean.sampled(trace_id, parent) is expected
        kept += expected
    if sampler in ("always_on", "parentbased_always_on"):
        assert kept >= 1000  # the comparison saw both outcomes where they exist
