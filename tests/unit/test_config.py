"""Resolving OpenTelemetryConfig against OTEL_* variables, and the sampler and exporter built."""

from __future__ import annotations

import dataclasses

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    TraceIdRatioBased,
)

from cello_telemetry import OpenTelemetryConfig, TelemetryConfigError
from cello_telemetry.config import ResolvedTelemetry, resolve
from cello_telemetry.provider import build_exporter, build_provider, build_sampler

CONFIG = OpenTelemetryConfig(
    service_name="api-gateway",
    otlp_endpoint="http://collector:4317",
    sampling_rate=0.5,
    service_version="1.2.3",
)


def resolved(env: dict[str, str] | None = None, **config: object) -> ResolvedTelemetry:
    return resolve(dataclasses.replace(CONFIG, **config), env=env or {})


def config_error(env: dict[str, str] | None = None, **config: object) -> str:
    with pytest.raises(TelemetryConfigError) as info:
        resolved(env, **config)
    return str(info.value)


# -- resolve -----------------------------------------------------------------------------------


def test_code_values_without_environment() -> None:
    assert resolved() == ResolvedTelemetry(
        enabled=True,
        service_name="api-gateway",
        service_version="1.2.3",
        endpoint="http://collector:4317",
        protocol="grpc",
        sampler="parentbased_traceidratio",
        sampling_ratio=0.5,
        export_traces=True,
        excluded_paths=frozenset({"/health", "/metrics"}),
        schedule_delay_ms=200,
        max_queue_size=8192,
        max_export_batch_size=128,
        export_timeout_ms=3000,
    )


def test_defaults_of_the_documented_class() -> None:
    settings = resolve(OpenTelemetryConfig(service_name="svc"), env={})

    assert settings.endpoint == "http://localhost:4317"
    assert settings.sampling_ratio == 1.0
    assert settings.service_version == "0.1.0"
    assert settings.excluded_paths == frozenset({"/health", "/metrics"})


def test_resolve_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-os-environ")

    assert resolve(CONFIG).service_name == "from-os-environ"


def test_environment_overrides_code() -> None:
    settings = resolved(
        {
            "OTEL_SERVICE_NAME": "renamed",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4317",
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.125",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "750",
        }
    )

    assert (settings.service_name, settings.endpoint) == ("renamed", "http://other:4317")
    assert (settings.sampler, settings.sampling_ratio) == ("traceidratio", 0.125)
    assert settings.schedule_delay_ms == 50
    assert settings.max_queue_size == 100
    assert settings.max_export_batch_size == 10
    assert settings.export_timeout_ms == 750


def test_traces_endpoint_wins_over_the_generic_one() -> None:
    settings = resolved(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4317",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/v1/traces",
        }
    )

    assert settings.endpoint == "http://traces:4318/v1/traces"
    assert settings.protocol == "http/protobuf"


def test_empty_service_name_variable_keeps_the_code_value() -> None:
    assert resolved({"OTEL_SERVICE_NAME": ""}).service_name == "api-gateway"


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("true", False), ("TRUE", False), (" True ", False), ("false", True), ("1", True), ("", True)],
)
def test_sdk_disabled(value: str, enabled: bool) -> None:
    assert resolved({"OTEL_SDK_DISABLED": value}).enabled is enabled


@pytest.mark.parametrize(
    ("endpoint", "protocol"),
    [
        ("http://collector:4317", "grpc"),
        ("http://collector", "grpc"),
        ("https://collector:443", "grpc"),
        ("http://collector:4318", "http/protobuf"),
        ("http://collector:4318/", "http/protobuf"),
        ("https://otlp.example/v1/traces", "http/protobuf"),
        ("https://otlp.example/v1/traces/", "http/protobuf"),
        ("http://collector:9000/v1/traces", "http/protobuf"),
        ("http://collector:4317/v1/tracesx", "grpc"),
    ],
)
def test_protocol_inferred_from_the_endpoint(endpoint: str, protocol: str) -> None:
    assert resolved({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}).protocol == protocol


@pytest.mark.parametrize(
    ("variable", "value", "endpoint", "protocol"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http://collector:4318", "grpc"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "http://collector:4317", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            " HTTP/Protobuf ",
            "http://collector:4317",
            "http/protobuf",
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", "http://c/v1/traces", "grpc"),
    ],
)
def test_explicit_protocol_wins(variable: str, value: str, endpoint: str, protocol: str) -> None:
    assert resolved({variable: value, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}).protocol == protocol


@pytest.mark.parametrize("value", ["http/json", "http", "grpcs", "udp"])
def test_invalid_protocol_is_rejected(value: str) -> None:
    message = config_error({"OTEL_EXPORTER_OTLP_PROTOCOL": value})

    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in message
    assert value in message


@pytest.mark.parametrize(
    "endpoint",
    ["collector:4317", "grpc://collector:4317", "http://", "ftp://collector", "/v1/traces"],
)
def test_invalid_endpoint_is_rejected(endpoint: str) -> None:
    assert endpoint in config_error({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})


@pytest.mark.parametrize("endpoint", ["http://collector:notaport", "http://collector:70000"])
def test_endpoint_with_a_bad_port_is_a_config_error(endpoint: str) -> None:
    # serve() only catches TelemetryConfigError; a bare ValueError would crash with a traceback.
    assert "collector" in config_error({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})


@pytest.mark.parametrize(
    ("value", "sampler"),
    [
        ("always_on", "always_on"),
        ("always_off", "always_off"),
        ("traceidratio", "traceidratio"),
        ("parentbased_always_on", "parentbased_always_on"),
        ("parentbased_always_off", "parentbased_always_off"),
        ("parentbased_traceidratio", "parentbased_traceidratio"),
        (" ALWAYS_ON ", "always_on"),
    ],
)
def test_sampler_names(value: str, sampler: str) -> None:
    assert resolved({"OTEL_TRACES_SAMPLER": value}).sampler == sampler


@pytest.mark.parametrize(
    "value", ["always", "jaeger_remote", "parentbased_jaeger_remote", "xray", "ratio", "on"]
)
def test_unknown_sampler_is_rejected(value: str) -> None:
    message = config_error({"OTEL_TRACES_SAMPLER": value})

    assert "OTEL_TRACES_SAMPLER" in message
    assert repr(value) in message


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_sampler_variable_means_the_default(value: str) -> None:
    # The OpenTelemetry spec: an empty variable is treated as unset.
    assert resolved({"OTEL_TRACES_SAMPLER": value}).sampler == "parentbased_traceidratio"


@pytest.mark.parametrize(("value", "ratio"), [("0", 0.0), ("1", 1.0), ("0.25", 0.25), ("", 0.5)])
def test_sampler_arg(value: str, ratio: float) -> None:
    assert resolved({"OTEL_TRACES_SAMPLER_ARG": value}).sampling_ratio == ratio


@pytest.mark.parametrize("value", ["1.01", "-0.1", "2", "nan", "inf", "-inf"])
def test_sampler_arg_out_of_range(value: str) -> None:
    assert "between 0.0 and 1.0" in config_error({"OTEL_TRACES_SAMPLER_ARG": value})


@pytest.mark.parametrize("value", ["abc", "50%", "1/2"])
def test_sampler_arg_not_a_number(value: str) -> None:
    message = config_error({"OTEL_TRACES_SAMPLER_ARG": value})

    assert message == f"OTEL_TRACES_SAMPLER_ARG={value!r} is not a number"


@pytest.mark.parametrize("rate", [-0.5, 1.5])
def test_sampling_rate_in_code_out_of_range(rate: float) -> None:
    assert "between 0.0 and 1.0" in config_error(sampling_rate=rate)


@pytest.mark.parametrize(
    "variable",
    [
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ],
)
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc", "is not a whole number"),
        ("1.5", "is not a whole number"),
        ("0", "must be positive"),
        ("-5", "must be positive"),
    ],
)
def test_bad_whole_numbers(variable: str, value: str, problem: str) -> None:
    assert config_error({variable: value}) == f"{variable}={value!r} {problem}"


def test_blank_whole_number_means_the_default() -> None:
    settings = resolved({"OTEL_BSP_MAX_QUEUE_SIZE": " ", "OTEL_BSP_SCHEDULE_DELAY": " 75 "})

    assert (settings.max_queue_size, settings.schedule_delay_ms) == (8192, 75)


def test_excluded_paths_from_a_list() -> None:
    assert resolved(excluded_paths=["/ready", "/ready", "/live"]).excluded_paths == frozenset(
        {"/ready", "/live"}
    )


# -- build_sampler -----------------------------------------------------------------------------


def test_static_samplers() -> None:
    assert build_sampler(resolved({"OTEL_TRACES_SAMPLER": "always_on"})) is ALWAYS_ON
    assert build_sampler(resolved({"OTEL_TRACES_SAMPLER": "always_off"})) is ALWAYS_OFF


def test_trace_id_ratio_sampler() -> None:
    sampler = build_sampler(resolved({"OTEL_TRACES_SAMPLER": "traceidratio"}, sampling_rate=0.25))

    assert type(sampler) is TraceIdRatioBased
    assert sampler.rate == 0.25


@pytest.mark.parametrize(
    ("name", "root"),
    [
        ("parentbased_always_on", "AlwaysOnSampler"),
        ("parentbased_always_off", "AlwaysOffSampler"),
        ("parentbased_traceidratio", "TraceIdRatioBased{0.25}"),
    ],
)
def test_parent_based_samplers(name: str, root: str) -> None:
    sampler = build_sampler(resolved({"OTEL_TRACES_SAMPLER": name}, sampling_rate=0.25))

    assert type(sampler) is ParentBased
    assert sampler.get_description().startswith(f"ParentBased{{root:{root},")


def test_default_sampler_is_parent_based_ratio_of_the_code_rate() -> None:
    sampler = build_sampler(resolved(sampling_rate=0.1))

    assert type(sampler) is ParentBased
    assert sampler.get_description().startswith("ParentBased{root:TraceIdRatioBased{0.1},")


# -- build_exporter and build_provider -----------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "target", "insecure"),
    [
        ("http://collector:4317", "collector:4317", True),
        ("https://otlp.example:443", "otlp.example:443", False),
    ],
)
def test_grpc_exporter(endpoint: str, target: str, insecure: bool) -> None:
    exporter = build_exporter(
        resolved({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT": "1500"})
    )
    try:
        assert type(exporter) is GrpcExporter
        assert exporter._endpoint == target
        assert exporter._insecure is insecure
        assert exporter._timeout == 1.5
    finally:
        exporter.shutdown()


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://otlp.example/v1/traces", "https://otlp.example/v1/traces"),
        ("https://otlp.example/v1/traces/", "https://otlp.example/v1/traces"),
    ],
)
def test_http_exporter_appends_v1_traces(endpoint: str, url: str) -> None:
    exporter = build_exporter(resolved({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}))
    try:
        assert type(exporter) is HttpExporter
        assert exporter._endpoint == url
    finally:
        exporter.shutdown()


def test_http_exporter_when_the_protocol_says_so() -> None:
    exporter = build_exporter(
        resolved(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            }
        )
    )
    try:
        assert type(exporter) is HttpExporter
        assert exporter._endpoint == "http://collector:4317/v1/traces"
    finally:
        exporter.shutdown()


def test_provider_without_export_has_no_processor() -> None:
    provider, processor = build_provider(resolved(export_traces=False))
    try:
        assert processor is None
        assert provider.resource.attributes["service.name"] == "api-gateway"
        assert provider.sampling.description == "parentbased_traceidratio(0.5)"
    finally:
        provider.shutdown()
