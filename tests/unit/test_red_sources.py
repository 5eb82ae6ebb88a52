"""tools.red: the exact request histograms when the store has them, else the span
metrics; and the demo's wait until the counts include every request of the tour."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest

from tools import red

pytestmark = pytest.mark.unit

VM = "http://victoriametrics:8428"
SPANS_PAGE = """\
traces_span_metrics_calls_total{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="GET /api/users/{id}",status_code="STATUS_CODE_UNSET"} 1
traces_span_metrics_duration_milliseconds_bucket{service_name="api-gateway",span_kind="SPAN_KIND_SERVER",span_name="GET /api/users/{id}",status_code="STATUS_CODE_UNSET",le="+Inf"} 1
"""  # noqa: E501 - exposition lines are as long as the collector writes them


def _vector(*series: tuple[dict[str, str], float]) -> dict[str, object]:
    result = [{"metric": labels, "value": [1700000000, str(value)]} for labels, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def _victoriametrics(histograms: bool) -> httpx.MockTransport:
    """A store answering the three PromQL queries of :func:`red.histogram_counts`."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "collector":
            return httpx.Response(200, text=SPANS_PAGE)
        assert request.url.path == "/api/v1/query"
        (query,) = parse_qs(request.url.query.decode())["query"]
        if not histograms:
            return httpx.Response(200, json=_vector())
        gateway = {"service_name": "api-gateway"}
        if "_bucket" in query:
            return httpx.Response(200, json=_vector(
                ({**gateway, "le": "0.01"}, 6), ({**gateway, "le": "0.1"}, 9),
                ({**gateway, "le": "+Inf"}, 10),
            ))  # fmt: skip
        if 'http_response_status_code=~"5.."' in query:
            return httpx.Response(200, json=_vector((gateway, 1)))
        return httpx.Response(200, json=_vector((gateway, 10)))

    return httpx.MockTransport(answer)


@pytest.fixture
def urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VICTORIAMETRICS_URL", VM)
    monkeypatch.setenv("RED_METRICS_URL", "http://collector:8889/metrics")


def test_the_histograms_give_exact_counts_errors_and_quantiles_in_ms() -> None:
    with httpx.Client(transport=_victoriametrics(histograms=True)) as http:
        counts = red.histogram_counts(http, VM)
    assert counts is not None
    (row,) = red.rows(counts)
    assert (row.service, row.requests, row.errors) == ("api-gateway", 10, 1)
    assert row.p50_ms == pytest.approx(5 / 6 * 10)  # the 5th of 10 in the 0-10 ms bucket
    assert row.p99_ms == 100  # beyond the last finite bound: that bound


@pytest.mark.usefixtures("urls")
@pytest.mark.parametrize(
    ("histograms", "source", "requests"),
    [(True, red.HISTOGRAMS, 10), (False, red.SPAN_METRICS, 1)],
)
def test_the_source_is_the_histograms_when_the_store_has_them(
    histograms: bool, source: str, requests: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with httpx.Client(transport=_victoriametrics(histograms)) as http:
        chosen = red.snapshot(http).choice()
        assert chosen is not None
        assert (chosen[0], chosen[1].requests["api-gateway"]) == (source, requests)
        assert red.report(http)
    out = capsys.readouterr().out
    assert f"from {source}" in out
    assert red.MEANING[source] in out


@pytest.mark.usefixtures("urls")
def test_without_any_source_the_report_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    down = httpx.MockTransport(lambda request: httpx.Response(503, text="down"))
    with httpx.Client(transport=down) as http:
        assert red.snapshot(http) == red.Snapshot(None, None)
        assert not red.report(http)
    assert "No RED metrics" in capsys.readouterr().out


def test_a_store_answer_that_is_not_a_query_result_is_refused() -> None:
    html = httpx.MockTransport(lambda request: httpx.Response(200, text="<html></html>"))
    with httpx.Client(transport=html) as http, pytest.raises(ValueError, match="not a PromQL"):
        red.histogram_counts(http, VM)


def _counts(requests: float, *, errors: float = 0) -> red.Counts:
    service = "api-gateway"
    return red.Counts(
        {service: requests}, {service: errors}, {service: {10: requests, math.inf: requests}}
    )


def test_counts_since_a_baseline_and_after_a_restart() -> None:
    later = _counts(12, errors=3).since(_counts(9, errors=1))
    assert (later.requests, later.errors) == ({"api-gateway": 3}, {"api-gateway": 2})
    assert later.buckets["api-gateway"] == {10: 3, math.inf: 3}
    # The service restarted: its counter began again at zero, so all of it is new.
    assert _counts(2).since(_counts(9)).requests == {"api-gateway": 2}


class FakeClock:
    """time.monotonic and time.sleep for :func:`red.wait_for`, without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _reads(*snapshots: red.Snapshot) -> Iterator[red.Snapshot]:
    yield from snapshots
    while True:
        yield snapshots[-1]


EXPECTED = {"api-gateway": 9}
BEFORE = red.Snapshot(_counts(5), _counts(5))


def test_the_wait_ends_once_the_counts_include_every_request_of_the_tour() -> None:
    # The collector flushes its span metrics on a timer: the first reads lag behind.
    reads = _reads(
        red.Snapshot(None, _counts(7)),
        red.Snapshot(None, _counts(13)),
        red.Snapshot(None, _counts(14)),
    )
    fake = FakeClock()
    found = red.wait_for(
        lambda: next(reads), BEFORE, EXPECTED, 30, clock=fake.clock, sleep=fake.sleep
    )
    assert found is not None
    source, counts, reached = found
    assert (source, counts.requests, reached) == (red.SPAN_METRICS, {"api-gateway": 9}, True)
    assert fake.now == 1.0  # two half-second polls


def test_once_the_store_has_histograms_only_they_end_the_wait() -> None:
    # The span metrics are complete first; the histograms, exported later, win.
    reads = _reads(red.Snapshot(_counts(6), _counts(14)), red.Snapshot(_counts(14), _counts(14)))
    fake = FakeClock()
    found = red.wait_for(
        lambda: next(reads), BEFORE, EXPECTED, 30, clock=fake.clock, sleep=fake.sleep
    )
    assert found is not None
    assert (found[0], found[1].requests, found[2]) == (red.HISTOGRAMS, {"api-gateway": 9}, True)


def test_the_deadline_ends_the_wait_with_what_was_counted() -> None:
    # Head sampling at 0.1: the span metrics see about a tenth of the tour, never all of it.
    fake = FakeClock()
    found = red.wait_for(
        lambda: red.Snapshot(None, _counts(6)),
        BEFORE,
        EXPECTED,
        10,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert found is not None
    assert (found[0], found[1].requests, found[2]) == (red.SPAN_METRICS, {"api-gateway": 1}, False)
    assert fake.now == 10.0
    nothing = red.wait_for(
        lambda: red.Snapshot(None, None), BEFORE, EXPECTED, 1, clock=fake.clock, sleep=fake.sleep
    )
    assert nothing is None


def test_the_histogram_query_result_is_parsed_by_label() -> None:
    body = json.dumps(_vector(({"service_name": "db-proxy"}, 4)))
    answer = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    with httpx.Client(transport=answer) as http:
        assert red.promql(http, VM, "up") == [({"service_name": "db-proxy"}, 4.0)]
