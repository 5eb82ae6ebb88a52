"""Telemetry configuration: the documented Cello API, and what the environment changes.

``OpenTelemetryConfig`` has the fields and defaults of Cello's own class, so service
code reads exactly like the Cello docs. The standard ``OTEL_*`` variables always win over
values written in code, so an operator can re-point or silence a service without
touching it. Most of them are read by the SDK itself, exactly as it documents them
(``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_BLRP_*``,
``OTEL_SPAN_*_LIMIT``, ``OTEL_ATTRIBUTE_*_LIMIT``, ``OTEL_EXPORTER_OTLP_*``,
``OTEL_METRICS_EXEMPLAR_FILTER``). :func:`resolve` is the one place this package reads any
of them: it settles what the code may also say (the service name, each signal's endpoint
and protocol, the sampling ratio, whether metrics are exported), which signals are off
(``OTEL_SDK_DISABLED``, ``OTEL_METRICS_EXPORTER``, ``OTEL_LOGS_EXPORTER``), what only the
edge uses (``OTEL_PROPAGATORS``, ``OTEL_SEMCONV_STABILITY_OPT_IN``), and which of our
defaults apply. Where the project's default differs from the SDK's, it applies only while
the variable is unset:

=================================  =========  ==========================================
Variable                           Ours       Why
=================================  =========  ==========================================
``OTEL_BSP_SCHEDULE_DELAY``        200 ms     a trace reaches the UI within a second
``OTEL_BSP_MAX_QUEUE_SIZE``        8192       rides out a burst at full load
``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` 128        encoding a batch holds the GIL briefly
``OTEL_EXPORTER_OTLP_TIMEOUT``     3 s        a dead collector costs little at shutdown
``OTEL_METRIC_EXPORT_INTERVAL``    5000 ms    a latency graph moves while you watch it
=================================  =========  ==========================================

Traces, metrics and logs follow the same endpoint rules, each with its own variables
(``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` before ``OTEL_EXPORTER_OTLP_ENDPOINT``, and so
on): a variable that is set is read by the exporter itself; otherwise the code's
``otlp_endpoint`` (or ``http://localhost:4317``) is used, with ``/v1/<signal>`` for HTTP.

Nothing here writes the environment. The ``/health`` counters of the batch processor
(queue full, after shutdown, pending) are the SDK's own metrics, which it records only
when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``; a service's deployment sets it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from .attributes import HttpSemconv

Protocol = Literal["grpc", "http/protobuf"]

DEFAULT_OTLP_ENDPOINT = "http://localhost:4317"
DEFAULT_SAMPLER = "parentbased_traceidratio"
#: The names the SDK's TracerProvider understands in ``OTEL_TRACES_SAMPLER``.
SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)
Signal = Literal["traces", "metrics", "logs"]
DEFAULT_PROPAGATORS = ("tracecontext", "baggage")
# Ours, each while its variable is unset (see the table above).
_BSP_SCHEDULE_DELAY_MS = 200
_BSP_MAX_QUEUE_SIZE = 8192
_BSP_MAX_EXPORT_BATCH_SIZE = 128
_EXPORT_TIMEOUT_S = 3.0
_METRIC_EXPORT_INTERVAL_MS = 5000
_SIGNAL_PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs")


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
        export_metrics: ``False`` records no metrics (``OTEL_METRICS_EXPORTER=none``
            does the same from the environment).
        excluded_paths: paths that get no span (health checks, metric scrapes).
    """

    service_name: str
    otlp_endpoint: str | None = None
    sampling_rate: float = 1.0
    service_version: str = "0.1.0"
    export_traces: bool = True
    export_metrics: bool = True
    excluded_paths: tuple[str, ...] | list[str] = field(
        default=("/health", "/health/live", "/health/ready", "/metrics")
    )


@dataclass(frozen=True, slots=True)
class OtlpTarget:
    """Where one signal's OTLP exporter sends, after the environment has had its say.

    ``endpoint`` (with ``/v1/<signal>`` for HTTP) is ``None`` when one of the signal's
    ``OTEL_EXPORTER_OTLP_*ENDPOINT`` variables is set, and ``timeout`` when one of its
    timeout variables is: the exporter then reads it itself, with the SDK's rules.
    """

    endpoint: str | None
    protocol: Protocol
    timeout: float | None = _EXPORT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class ResolvedTelemetry:
    """The effective settings after the environment has had its say.

    ``endpoint`` is ``None`` when an ``OTEL_EXPORTER_OTLP_*ENDPOINT`` variable is set:
    the exporter then reads it itself, with the SDK's rules; so are ``export_timeout``
    and the three ``batch_*`` values when their variables are set. ``sampling_ratio`` is
    ``None`` for a sampler without a ratio. ``metrics`` and ``logs`` are ``None`` when
    that signal is off.
    """

    enabled: bool
    service_name: str
    service_version: str
    endpoint: str | None
    protocol: Protocol
    sampler: str
    sampling_ratio: float | None
    sampler_from_env: bool
    export_traces: bool
    excluded_paths: frozenset[str]
    http_semconv: HttpSemconv = HttpSemconv.OLD
    propagators: tuple[str, ...] = DEFAULT_PROPAGATORS
    batch_schedule_delay_millis: int | None = _BSP_SCHEDULE_DELAY_MS
    batch_max_queue_size: int | None = _BSP_MAX_QUEUE_SIZE
    batch_max_export_batch_size: int | None = _BSP_MAX_EXPORT_BATCH_SIZE
    export_timeout: float | None = _EXPORT_TIMEOUT_S
    processor_metrics: bool = False
    metrics: OtlpTarget | None = None
    metric_export_interval_millis: int = _METRIC_EXPORT_INTERVAL_MS
    logs: OtlpTarget | None = None


def resolve(config: OpenTelemetryConfig, env: Mapping[str, str] | None = None) -> ResolvedTelemetry:
    """Settle ``config`` against the standard ``OTEL_*`` variables.

    Raises:
        TelemetryConfigError: a value is out of range or unknown; the message names
            the setting so the operator can fix it.
    """
    env = os.environ if env is None else env
    traces = _target(env, "traces", config.otlp_endpoint)

    # OTEL_TRACES_SAMPLER set: the SDK builds that sampler from the variables, as it
    # documents (its ratio defaults to 1.0). Unset: ours, with the code's sampling_rate
    # unless OTEL_TRACES_SAMPLER_ARG says otherwise. A name the SDK would silently
    # replace with its default fails here instead.
    named = env.get("OTEL_TRACES_SAMPLER") or ""
    arg = env.get("OTEL_TRACES_SAMPLER_ARG")
    ratio: float | None
    if not named.strip():
        sampler, ratio = DEFAULT_SAMPLER, _ratio(arg, config.sampling_rate)
    elif named.lower() in SAMPLERS:
        sampler, ratio = named.lower(), _ratio(arg, 1.0)  # a bad ARG fails for any sampler
        if "ratio" not in sampler:
            ratio = None
    else:
        raise TelemetryConfigError(
            f"OTEL_TRACES_SAMPLER={named!r} is not one of {', '.join(sorted(SAMPLERS))}"
        )

    delay, queue_size, batch_size = _batch(env)
    metrics_on = config.export_metrics and _exporter_on(env, "OTEL_METRICS_EXPORTER")
    logs_on = _exporter_on(env, "OTEL_LOGS_EXPORTER")
    return ResolvedTelemetry(
        enabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true",
        service_name=env.get("OTEL_SERVICE_NAME") or config.service_name,
        service_version=config.service_version,
        endpoint=traces.endpoint,
        protocol=traces.protocol,
        sampler=sampler,
        sampling_ratio=ratio,
        sampler_from_env=bool(named.strip()),
        export_traces=config.export_traces,
        excluded_paths=frozenset(config.excluded_paths),
        http_semconv=HttpSemconv.from_opt_in(env.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")),
        propagators=_propagators(env.get("OTEL_PROPAGATORS", "")),
        batch_schedule_delay_millis=delay,
        batch_max_queue_size=queue_size,
        batch_max_export_batch_size=batch_size,
        export_timeout=traces.timeout,
        processor_metrics=_flag(env.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "")),
        metrics=_target(env, "metrics", config.otlp_endpoint) if metrics_on else None,
        metric_export_interval_millis=_interval(env.get("OTEL_METRIC_EXPORT_INTERVAL", "")),
        logs=_target(env, "logs", config.otlp_endpoint) if logs_on else None,
    )


def _target(env: Mapping[str, str], signal: Signal, code_endpoint: str | None) -> OtlpTarget:
    """One signal's endpoint, protocol and timeout: its own variable, then the generic one."""
    own = f"OTEL_EXPORTER_OTLP_{signal.upper()}_"
    from_env = env.get(own + "ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    endpoint = from_env or code_endpoint or DEFAULT_OTLP_ENDPOINT
    _check_url(endpoint)
    protocol = _protocol(env, own + "PROTOCOL", endpoint)
    timed = env.get(own + "TIMEOUT") or env.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    if from_env:
        return OtlpTarget(None, protocol, None if timed else _EXPORT_TIMEOUT_S)
    if protocol == "http/protobuf":
        endpoint = _signal_path(endpoint, signal)
    return OtlpTarget(endpoint, protocol, None if timed else _EXPORT_TIMEOUT_S)


def _signal_path(endpoint: str, signal: Signal) -> str:
    # The code's endpoint names the collector; a /v1/traces written there for the traces'
    # sake is the collector's too, so each signal gets its own path.
    base = endpoint.rstrip("/")
    for known in _SIGNAL_PATHS:
        base = base.removesuffix(known)
    return f"{base}/v1/{signal}"


def _exporter_on(env: Mapping[str, str], name: str) -> bool:
    """``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER``: ``otlp`` (the default) or ``none``."""
    names = {item.strip().lower() for item in env.get(name, "").split(",") if item.strip()}
    unknown = names - {"otlp", "none"}
    if unknown:
        raise TelemetryConfigError(
            f"{name}={env[name]!r}: this package exports over OTLP; use otlp or none"
        )
    return "otlp" in names or not names


def _interval(raw: str) -> int:
    if not raw.strip():
        return _METRIC_EXPORT_INTERVAL_MS
    if not raw.strip().isdigit() or int(raw) <= 0:
        raise TelemetryConfigError(
            f"OTEL_METRIC_EXPORT_INTERVAL={raw!r} must be a positive number of milliseconds"
        )
    return int(raw)


def _propagators(raw: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
    return names or DEFAULT_PROPAGATORS


def _batch(env: Mapping[str, str]) -> tuple[int | None, int | None, int | None]:
    """Our schedule delay, queue size and batch size; ``None`` where the SDK reads the
    variable. A default batch larger than the operator's queue would be refused by the
    SDK, so it shrinks to the queue."""
    delay = None if env.get("OTEL_BSP_SCHEDULE_DELAY") else _BSP_SCHEDULE_DELAY_MS
    queue = env.get("OTEL_BSP_MAX_QUEUE_SIZE", "").strip()
    batch = None if env.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else _BSP_MAX_EXPORT_BATCH_SIZE
    if batch is not None and queue.isdigit():
        batch = min(batch, int(queue))
    return delay, None if queue else _BSP_MAX_QUEUE_SIZE, batch


def _flag(raw: str) -> bool:
    return raw.strip().lower() == "true"


def _check_url(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        valid = False
    if not valid:
        raise TelemetryConfigError(
            f"OTLP endpoint {endpoint!r} must be an http(s) URL such as http://collector:4317"
        )


def _ratio(raw: str | None, default: float) -> float:
    ratio = default
    if raw is not None and raw.strip():
        try:
            ratio = float(raw)
        except ValueError:
            raise TelemetryConfigError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a number") from None
    if not 0.0 <= ratio <= 1.0:
        raise TelemetryConfigError(f"sampling ratio {ratio} must be between 0.0 and 1.0")
    return ratio


def _protocol(env: Mapping[str, str], own: str, endpoint: str) -> Protocol:
    # An explicit protocol wins; otherwise the endpoint tells: 4318 and /v1/<signal> are
    # OTLP/HTTP by convention, anything else is gRPC.
    names = (own, "OTEL_EXPORTER_OTLP_PROTOCOL")
    explicit = next((env[name].strip().lower() for name in names if env.get(name)), None)
    if explicit is not None:
        if explicit not in ("grpc", "http/protobuf"):
            raise TelemetryConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={explicit!r}: use grpc or http/protobuf"
            )
        return explicit  # type: ignore[return-value]  # checked just above
    parts = urlsplit(endpoint)
    if parts.port == 4318 or parts.path.rstrip("/").endswith(_SIGNAL_PATHS):
        return "http/protobuf"
    return "grpc"
