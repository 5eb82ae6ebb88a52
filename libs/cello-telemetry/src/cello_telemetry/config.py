"""Telemetry configuration: the documented Cello API, resolved against the environment.

``OpenTelemetryConfig`` has the fields and defaults of Cello's own class, so service
code reads exactly like the Cello docs. :func:`resolve` then applies the standard
OpenTelemetry environment variables, which always win over values written in code:
an operator can re-point or silence a service without touching it.

=================================  ===========================================
Variable                           Effect
=================================  ===========================================
``OTEL_SDK_DISABLED``              ``true`` turns tracing off entirely
``OTEL_SERVICE_NAME``              replaces ``service_name``
``OTEL_RESOURCE_ATTRIBUTES``       extra resource attributes (``k=v,k2=v2``)
``OTEL_EXPORTER_OTLP_ENDPOINT``    replaces ``otlp_endpoint``
``OTEL_EXPORTER_OTLP_PROTOCOL``    ``grpc`` (default) or ``http/protobuf``
``OTEL_TRACES_SAMPLER``            a standard sampler name (see ``_SAMPLERS``)
``OTEL_TRACES_SAMPLER_ARG``        the ratio for the ``*traceidratio`` samplers
``OTEL_BSP_SCHEDULE_DELAY``        export batch delay in ms (default 200)
``OTEL_BSP_MAX_QUEUE_SIZE``        span queue cap (default 8192)
``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` spans per export request (default 128)
``OTEL_EXPORTER_OTLP_TIMEOUT``     export timeout in ms (default 3000)
``CELLO_TELEMETRY_EXPORT``         ``process`` (default): encode and send spans
                                   from a child process; ``inline``: from a
                                   thread of the service process
=================================  ===========================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

Protocol = Literal["grpc", "http/protobuf"]
ExportMode = Literal["process", "inline"]
SamplerName = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]

_SAMPLERS: frozenset[str] = frozenset(SamplerName.__args__)  # type: ignore[attr-defined]
DEFAULT_OTLP_ENDPOINT = "http://localhost:4317"


class TelemetryConfigError(ValueError):
    """A telemetry setting is invalid; raised at start-up, never per request."""


@dataclass(frozen=True, slots=True)
class OpenTelemetryConfig:
    """What a service asks of telemetry, field for field as in Cello's own class.

    Args:
        service_name: ``service.name`` of every span this process exports.
        otlp_endpoint: where to send spans; ``None`` means ``http://localhost:4317``.
        sampling_rate: share of new traces to record, 0.0 to 1.0. A request that
            arrives with a sampled or unsampled parent follows its parent.
        service_version: ``service.version`` on the resource.
        export_traces: ``False`` keeps spans in-process (propagation still works).
        export_metrics: accepted for API compatibility; this package exports traces only.
        excluded_paths: paths that get no span (health checks, metric scrapes).
    """

    service_name: str
    otlp_endpoint: str | None = None
    sampling_rate: float = 1.0
    service_version: str = "0.1.0"
    export_traces: bool = True
    export_metrics: bool = True
    excluded_paths: tuple[str, ...] | list[str] = field(default=("/health", "/metrics"))


@dataclass(frozen=True, slots=True)
class ResolvedTelemetry:
    """The effective settings after the environment has had its say."""

    enabled: bool
    service_name: str
    service_version: str
    endpoint: str
    protocol: Protocol
    sampler: SamplerName
    sampling_ratio: float
    export_traces: bool
    excluded_paths: frozenset[str]
    schedule_delay_ms: int
    max_queue_size: int
    max_export_batch_size: int
    export_timeout_ms: int
    export_mode: ExportMode = "process"


def resolve(config: OpenTelemetryConfig, env: Mapping[str, str] | None = None) -> ResolvedTelemetry:
    """Apply the standard ``OTEL_*`` variables to ``config`` and validate the result.

    Raises:
        TelemetryConfigError: a value is out of range or unknown; the message names
            the variable so the operator can fix it.
    """
    env = os.environ if env is None else env
    endpoint = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or config.otlp_endpoint
        or DEFAULT_OTLP_ENDPOINT
    )
    parts = urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(scheme="")  # reported just below
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TelemetryConfigError(
            f"OTLP endpoint {endpoint!r} must be an http(s) URL such as http://collector:4317"
        )

    sampler = (env.get("OTEL_TRACES_SAMPLER") or "").strip().lower() or "parentbased_traceidratio"
    if sampler not in _SAMPLERS:
        raise TelemetryConfigError(
            f"OTEL_TRACES_SAMPLER={sampler!r} is not one of {', '.join(sorted(_SAMPLERS))}"
        )
    ratio = _float(env, "OTEL_TRACES_SAMPLER_ARG", config.sampling_rate)
    if not 0.0 <= ratio <= 1.0:
        raise TelemetryConfigError(f"sampling ratio {ratio} must be between 0.0 and 1.0")

    export_mode = env.get("CELLO_TELEMETRY_EXPORT", "process").strip().lower()
    if export_mode not in ("process", "inline"):
        raise TelemetryConfigError(f"CELLO_TELEMETRY_EXPORT={export_mode!r}: use process or inline")

    return ResolvedTelemetry(
        enabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true",
        service_name=env.get("OTEL_SERVICE_NAME") or config.service_name,
        service_version=config.service_version,
        endpoint=endpoint,
        protocol=_protocol(env, port, parts.path),
        sampler=sampler,  # type: ignore[arg-type]  # checked against _SAMPLERS above
        sampling_ratio=ratio,
        export_traces=config.export_traces,
        excluded_paths=frozenset(config.excluded_paths),
        schedule_delay_ms=_int(env, "OTEL_BSP_SCHEDULE_DELAY", 200),
        max_queue_size=_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 8192),
        max_export_batch_size=_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 128),
        export_timeout_ms=_int(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 3000),
        export_mode=export_mode,  # type: ignore[arg-type]  # checked above
    )


def _protocol(env: Mapping[str, str], port: int | None, path: str) -> Protocol:
    # An explicit protocol wins; otherwise the endpoint tells: 4318 and /v1/traces
    # are OTLP/HTTP by convention, anything else is gRPC (the SDK's default).
    explicit = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    if explicit:
        explicit = explicit.strip().lower()
        if explicit not in ("grpc", "http/protobuf"):
            raise TelemetryConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={explicit!r}: use grpc or http/protobuf"
            )
        return explicit  # type: ignore[return-value]
    if port == 4318 or path.rstrip("/").endswith("/v1/traces"):
        return "http/protobuf"
    return "grpc"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TelemetryConfigError(f"{name}={raw!r} is not a whole number") from None
    if value <= 0:
        raise TelemetryConfigError(f"{name}={raw!r} must be positive")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise TelemetryConfigError(f"{name}={raw!r} is not a number") from None
