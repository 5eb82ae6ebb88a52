"""Resolving OpenTelemetryConfig against the OTEL_* variables the code may also set."""

from __future__ import annotations

import dataclasses

import pytest

from cello_telemetry import OpenTelemetryConfig, TelemetryConfigError
from cello_telemetry.attributes import HttpSemconv
from cello_telemetry.config import OtlpTarget, ResolvedTelemetry, resolve

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
        sampler_from_env=False,
        export_traces=True,
        excluded_paths=frozenset({"/health", "/health/live", "/health/ready", "/metrics"}),
        metrics=OtlpTarget("http://collector:4317", "grpc"),
        logs=OtlpTarget("http://collector:4317", "grpc"),
    )


def test_defaults_of_the_documented_class() -> None:
    settings = resolve(OpenTelemetryConfig(service_name="svc"), env={})

    assert settings.endpoint == "http://localhost:4317"
    assert settings.sampling_ratio == 1.0
    assert settings.service_version == "0.1.0"
    assert settings.excluded_paths == frozenset(
        {"/health", "/health/live", "/health/ready", "/metrics"}
    )


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
        }
    )

    # The exporter reads the endpoint variable itself: nothing from code is passed.
    assert (settings.service_name, settings.endpoint) == ("renamed", None)
    assert (settings.sampler, settings.sampling_ratio) == ("traceidratio", 0.125)
    assert settings.sampler_from_env


def test_traces_endpoint_wins_over_the_generic_one() -> None:
    settings = resolved(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4317",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/v1/traces",
        }
    )

    assert settings.endpoint is None
    assert settings.protocol == "http/protobuf"  # from the traces endpoint


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
        ("ALWAYS_ON", "always_on"),
    ],
)
def test_sampler_names(value: str, sampler: str) -> None:
    assert resolved({"OTEL_TRACES_SAMPLER": value}).sampler == sampler


@pytest.mark.parametrize("value", ["always", "jaeger_remote", " always_on", "xray", "ratio", "on"])
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


def test_a_named_ratio_sampler_defaults_to_the_sdks_ratio_not_the_codes() -> None:
    # With OTEL_TRACES_SAMPLER set the SDK builds the sampler, and its ratio default is 1.0.
    assert resolved({"OTEL_TRACES_SAMPLER": "traceidratio"}).sampling_ratio == 1.0
    assert resolved({"OTEL_TRACES_SAMPLER": "always_on"}).sampling_ratio is None


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


def test_excluded_paths_from_a_list() -> None:
    assert resolved(excluded_paths=["/ready", "/ready", "/live"]).excluded_paths == frozenset(
        {"/ready", "/live"}
    )


# -- the rest this package reads: one resolver --------------------------------------------------


def test_what_only_the_edge_uses_is_resolved_too() -> None:
    settings = resolved(
        {
            "OTEL_PROPAGATORS": " TraceContext ",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "database,http/dup",
            "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "True",
        }
    )

    assert settings.propagators == ("tracecontext",)
    assert settings.http_semconv is HttpSemconv.DUP
    assert settings.processor_metrics


def test_our_batch_defaults_apply_only_while_unset() -> None:
    ours = resolved()
    assert (ours.batch_schedule_delay_millis, ours.batch_max_queue_size) == (200, 8192)
    assert (ours.batch_max_export_batch_size, ours.export_timeout) == (128, 3.0)

    theirs = resolved(
        {
            "OTEL_BSP_SCHEDULE_DELAY": "5000",
            "OTEL_BSP_MAX_QUEUE_SIZE": "2048",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "10",
        }
    )
    # None: the SDK reads the variable itself.
    assert theirs.batch_schedule_delay_millis is None
    assert theirs.batch_max_queue_size is None
    assert theirs.batch_max_export_batch_size is None
    assert theirs.export_timeout is None
