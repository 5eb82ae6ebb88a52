"""tools.red: the Prometheus text format in, a RED row per service out."""

from __future__ import annotations

import math

import httpx
import pytest

from tools import red

PAGE = """\
# HELP traces_span_metrics_calls_total Number of spans
# TYPE traces_span_metrics_calls_total counter
traces_span_metrics_calls_total{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="GET /api/users/{id}",status_code="STATUS_CODE_UNSET"} 8
traces_span_metrics_calls_total{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="POST /api/users",status_code="STATUS_CODE_ERROR"} 2
traces_span_metrics_calls_total{service_name="api-gateway",span_kind="SPAN_KIND_CLIENT",span_name="GET /users/{id}",status_code="STATUS_CODE_ERROR"} 5
traces_span_metrics_duration_milliseconds_bucket{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="GET /api/users/{id}",status_code="STATUS_CODE_UNSET",le="10"} 4
traces_span_metrics_duration_milliseconds_bucket{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="GET /api/users/{id}",status_code="STATUS_CODE_UNSET",le="100"} 8
traces_span_metrics_duration_milliseconds_bucket{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="GET /api/users/{id}",status_code="STATUS_CODE_UNSET",le="+Inf"} 8
traces_span_metrics_duration_milliseconds_bucket{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="POST /api/users",status_code="STATUS_CODE_ERROR",le="10"} 0
traces_span_metrics_duration_milliseconds_bucket{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="POST /api/users",status_code="STATUS_CODE_ERROR",le="100"} 0
traces_span_metrics_duration_milliseconds_bucket{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="POST /api/users",status_code="STATUS_CODE_ERROR",le="+Inf"} 2
"""  # noqa: E501 - exposition lines are as long as the collector writes them


def test_parse_reads_names_labels_and_values_and_skips_comments() -> None:
    samples = red.parse(PAGE + 'other{path="a \\"quoted\\" \\\\ value\\n"} 1.5e3\n')
    assert len(samples) == 10
    assert samples[0].name == red.CALLS  # the counter's sample keeps its _total
    assert samples[0].labels["span_name"] == "GET /api/users/{id}"
    assert samples[0].value == 8
    assert samples[5].labels["le"] == "+Inf"
    assert samples[-1].labels == {"path": 'a "quoted" \\ value\n'}
    assert samples[-1].value == 1500


def test_a_page_in_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="metric name"):
        red.parse("<html>Service Unavailable</html>\n")


def test_report_says_when_the_page_is_not_prometheus_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RED_METRICS_URL", "http://collector:8889/metrics")
    html = httpx.MockTransport(lambda request: httpx.Response(200, text="<html></html>\n"))
    with httpx.Client(transport=html) as http:
        assert red.report(http) is False
    out = capsys.readouterr().out
    # A page that is not Prometheus text counts as no answer: no table made of nothing.
    assert "the collector's page http://collector:8889/metrics answer" in out
    assert "requests" not in out


def test_server_calls_count_server_spans_only() -> None:
    assert red.server_calls(red.parse(PAGE)) == {
        ("api-gateway", "STATUS_CODE_UNSET"): 8,
        ("api-gateway", "STATUS_CODE_ERROR"): 2,
    }


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.25, 5.0), (0.5, 10.0), (0.75, 55.0), (1.0, 100.0)],
)
def test_quantile_interpolates_inside_the_bucket(q: float, expected: float) -> None:
    # 4 observations up to 10 ms, 4 more up to 100 ms, none beyond.
    assert red.quantile(q, {10: 4, 100: 8, math.inf: 8}) == pytest.approx(expected)


def test_quantile_in_the_open_bucket_is_the_last_finite_bound() -> None:
    assert red.quantile(0.99, {10: 1, 100: 1, math.inf: 4}) == 100
    assert math.isnan(red.quantile(0.5, {10: 0, math.inf: 0}))


def test_red_rows_per_service() -> None:
    (row,) = red.red(red.parse(PAGE))
    assert (row.service, row.requests, row.errors) == ("api-gateway", 10, 2)
    # 10 observations: 4 up to 10 ms, 4 up to 100 ms, 2 beyond.
    assert row.p50_ms == pytest.approx(10 + 90 * (5 - 4) / 4)
    assert row.p99_ms == 100
    assert "api-gateway" in red.table([row])
