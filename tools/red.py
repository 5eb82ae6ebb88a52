"""``python -m tools.red`` (``make red``): requests, errors and latency per service.

Two sources, the exact one first:

- the request histograms the services record themselves, for every request, sampled or
  not (``http.server.request.duration``, in VictoriaMetrics as
  ``http_server_request_duration_seconds_*``, read with PromQL on ``/api/v1/query`` at
  ``VICTORIAMETRICS_URL``);
- otherwise the collector's ``span_metrics`` connector, which counts the SERVER spans
  it receives before its own (tail) sampling, served in the Prometheus text format at
  ``RED_METRICS_URL`` and read with ``prometheus_client``'s parser. Under head sampling
  the spans of unsampled requests never leave the service, so these counts are the
  sampled share of the requests only.

It prints, per service, the requests, how many of them failed (5xx, or a SERVER span in
ERROR), and the p50/p99 duration estimated from the histogram buckets, the way
Prometheus' ``histogram_quantile`` does, and says which source it read. ``make demo``
ends with this table, counting the tour's own requests.
"""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import cello_settings as env
from tools.topology import topology

CALLS = "traces_span_metrics_calls_total"
DURATION_BUCKET = "traces_span_metrics_duration_milliseconds_bucket"
DURATION_COUNT = "traces_span_metrics_duration_milliseconds_count"
SERVER = "SPAN_KIND_SERVER"
ERROR = "STATUS_CODE_ERROR"
#: The services' own request histogram (``http.server.request.duration``, in seconds),
#: under the Prometheus names VictoriaMetrics gives OTLP metrics.
HISTOGRAM = "http_server_request_duration_seconds"


@dataclass(frozen=True, slots=True)
class Red:
    """Requests, errors and duration of one service's SERVER spans."""

    service: str
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float


def parse(text: str) -> list[Sample]:
    """Every sample of a page in the Prometheus text format, family by family.

    A sample keeps its own name (``..._total``, ``..._bucket``), its labels unescaped,
    and its value as a float.

    Raises:
        ValueError: the page is not in the Prometheus text format.
    """
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def read(url: str, http: httpx.Client) -> list[Sample]:
    """Fetch and parse the metrics page at ``url``.

    Raises:
        httpx.HTTPError: the page does not answer, or not with a 2xx.
        ValueError: the page is not in the Prometheus text format.
    """
    response = http.get(url, timeout=5)
    response.raise_for_status()
    return parse(response.text)


def server_calls(samples: Iterable[Sample]) -> dict[tuple[str, str], int]:
    """SERVER span counts by ``(service, status code)``, summed over span names."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for sample in samples:
        if sample.name == CALLS and sample.labels.get("span_kind") == SERVER:
            key = (sample.labels["service_name"], sample.labels["status_code"])
            counts[key] += int(sample.value)
    return dict(counts)


def quantile(q: float, buckets: Mapping[float, float]) -> float:
    """The ``q`` quantile from cumulative ``{upper bound: count}`` buckets, interpolated
    linearly inside the bucket it falls in (``nan`` when there are no observations)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0
    if not total:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if math.isinf(upper):  # beyond the last finite bound: that bound is all we know
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def red(samples: Iterable[Sample]) -> list[Red]:
    """One :class:`Red` per service that has SERVER spans, by service name."""
    return rows(span_counts(samples))


def table(rows: Iterable[Red]) -> str:
    """``rows`` as a fixed-width text table."""
    lines = [f"{'service':<16} {'requests':>9} {'errors':>7} {'error %':>8} {'p50':>9} {'p99':>9}"]
    for row in rows:
        share = 100 * row.errors / row.requests if row.requests else 0.0
        lines.append(
            f"{row.service:<16} {row.requests:>9} {row.errors:>7} {share:>7.1f}% "
            f"{_ms(row.p50_ms):>9} {_ms(row.p99_ms):>9}"
        )
    return "\n".join(lines)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f} ms"


# -- counts from either source -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    """What one source counted, per service: requests, failed requests, and the
    cumulative duration buckets (``{upper bound in ms: count}``)."""

    requests: Mapping[str, float]
    errors: Mapping[str, float]
    buckets: Mapping[str, Mapping[float, float]]

    def since(self, earlier: Counts) -> Counts:
        """What was counted after ``earlier`` (a counter that went down restarted at zero,
        so its whole value is new, as Prometheus' ``increase`` takes it)."""
        return Counts(
            _minus(self.requests, earlier.requests),
            _minus(self.errors, earlier.errors),
            {
                service: _minus(buckets, earlier.buckets.get(service, {}))
                for service, buckets in self.buckets.items()
            },
        )

    def reached(self, expected: Mapping[str, int]) -> bool:
        """Whether every service in ``expected`` counted at least that many requests."""
        return all(self.requests.get(service, 0) >= n for service, n in expected.items())


NO_COUNTS = Counts({}, {}, {})


def _minus[K](later: Mapping[K, float], earlier: Mapping[K, float]) -> dict[K, float]:
    return {
        key: value - earlier.get(key, 0) if value >= earlier.get(key, 0) else value
        for key, value in later.items()
    }


def rows(counts: Counts) -> list[Red]:
    """One :class:`Red` per service that counted requests, by service name."""
    return [
        Red(
            service,
            int(requests),
            int(counts.errors.get(service, 0)),
            quantile(0.5, counts.buckets.get(service, {})),
            quantile(0.99, counts.buckets.get(service, {})),
        )
        for service, requests in sorted(counts.requests.items())
        if requests
    ]


def span_counts(samples: Iterable[Sample]) -> Counts:
    """The SERVER spans of the collector's span_metrics page, as :class:`Counts`."""
    samples = list(samples)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for sample in samples:
        if sample.name == DURATION_BUCKET and sample.labels.get("span_kind") == SERVER:
            le = float(sample.labels["le"])  # "+Inf" parses as inf
            buckets[sample.labels["service_name"]][le] += sample.value
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    for (service, status), count in server_calls(samples).items():
        requests[service] += count
        if status == ERROR:
            errors[service] += count
    return Counts(dict(requests), dict(errors), {s: dict(b) for s, b in buckets.items()})


def promql(http: httpx.Client, base_url: str, query: str) -> list[tuple[dict[str, str], float]]:
    """An instant PromQL query on ``/api/v1/query``: each series' labels and value.

    Raises:
        httpx.HTTPError: the store does not answer, or not with a 2xx.
        ValueError: the answer is not a Prometheus query result.
    """
    response = http.get(f"{base_url}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    try:
        result = response.json()["data"]["result"]
        return [(series["metric"], float(series["value"][1])) for series in result]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"not a PromQL query result: {response.text[:200]!r}") from exc


def histogram_counts(http: httpx.Client, base_url: str) -> Counts | None:
    """The services' request histograms in VictoriaMetrics at ``base_url`` as
    :class:`Counts` (5xx answers are the errors); ``None`` while it holds none.

    Raises:
        httpx.HTTPError, ValueError: as :func:`promql`.
    """
    total = promql(http, base_url, f"sum by (service_name) ({HISTOGRAM}_count)")
    if not total:
        return None
    failed = promql(
        http,
        base_url,
        f'sum by (service_name) ({HISTOGRAM}_count{{http_response_status_code=~"5.."}})',
    )
    buckets: dict[str, dict[float, float]] = defaultdict(dict)
    for labels, value in promql(http, base_url, f"sum by (service_name, le) ({HISTOGRAM}_bucket)"):
        buckets[labels["service_name"]][float(labels["le"]) * 1000] = value  # s -> ms
    return Counts(
        {labels["service_name"]: value for labels, value in total},
        {labels["service_name"]: value for labels, value in failed},
        dict(buckets),
    )


# -- which source, and what its counts mean ------------------------------------------------

HISTOGRAMS = "the services' request histograms"
SPAN_METRICS = "the collector's span metrics"
MEANING = {
    HISTOGRAMS: "every request each service answered, recorded by the service itself "
    "whether its trace was sampled or not: exact",
    SPAN_METRICS: "SERVER spans the collector received, counted before its tail sampling: "
    "exact with SAMPLING=tail, but under head sampling only the sampled requests' spans "
    "leave the services (sampling_rate 0.1 counts about a tenth)",
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Both sources read at one moment; ``None`` where a source has nothing (or does not
    answer)."""

    histograms: Counts | None
    spans: Counts | None

    def choice(self) -> tuple[str, Counts] | None:
        """The exact histograms when the store has them, else the span metrics."""
        if self.histograms is not None:
            return HISTOGRAMS, self.histograms
        if self.spans is not None:
            return SPAN_METRICS, self.spans
        return None

    def since(self, earlier: Snapshot) -> Snapshot:
        """Each source's counts after ``earlier``'s (a source then silent counted from zero)."""
        return Snapshot(
            _since(self.histograms, earlier.histograms), _since(self.spans, earlier.spans)
        )


def _since(later: Counts | None, earlier: Counts | None) -> Counts | None:
    return None if later is None else later.since(earlier or NO_COUNTS)


def victoriametrics_url() -> str:
    """``VICTORIAMETRICS_URL``: the metrics store (PromQL API)."""
    return env.env_url("VICTORIAMETRICS_URL", topology().victoriametrics_url)


def metrics_url() -> str:
    """``RED_METRICS_URL``: the collector's span_metrics page."""
    return env.env_url("RED_METRICS_URL", topology().red_metrics_url)


def snapshot(http: httpx.Client) -> Snapshot:
    """Read both sources; one that does not answer (or answers garbage) counts as empty."""
    try:
        histograms = histogram_counts(http, victoriametrics_url())
    except (httpx.HTTPError, ValueError):
        histograms = None
    try:
        spans = span_counts(read(metrics_url(), http))
    except (httpx.HTTPError, ValueError):
        spans = None
    return Snapshot(histograms, spans)


def wait_for(
    read_snapshot: Callable[[], Snapshot],
    baseline: Snapshot,
    expected: Mapping[str, int],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 0.5,
) -> tuple[str, Counts, bool] | None:
    """Poll until a source's counts since ``baseline`` reach ``expected`` requests per
    service, or the deadline; return ``(source, counts, reached)`` (``None`` when neither
    source ever answered).

    The histograms win once the store holds them: then only they can end the wait.
    Without them the span metrics do. The sources flush on their own schedule (the
    collector's span metrics every few seconds, the services' metric export on
    ``OTEL_METRIC_EXPORT_INTERVAL``), which is why a read right after the last request
    counts too few.
    """
    deadline = clock() + timeout
    while True:
        chosen = read_snapshot().since(baseline).choice()
        if chosen is not None and chosen[1].reached(expected):
            return (*chosen, True)
        if clock() >= deadline:
            return None if chosen is None else (*chosen, False)
        sleep(interval)


def show(source: str, counts: Counts, what: str | None = None) -> None:
    """Print the table of ``counts`` with where they come from and what they mean;
    ``what`` they cover defaults to all since the source started."""
    url = {HISTOGRAMS: victoriametrics_url(), SPAN_METRICS: metrics_url()}[source]
    started = {HISTOGRAMS: "each service", SPAN_METRICS: "the collector"}[source]
    print(f"RED metrics per service, {what or f'since {started} started'}, from {source} ({url}):")
    print(f"({MEANING[source]}; p50/p99 estimated from the histogram buckets)")
    found = rows(counts)
    print(table(found) if found else "    (no requests counted yet)")


def report(http: httpx.Client) -> bool:
    """Print the RED table since the sources started; say so (and return False) when
    neither source answers."""
    chosen = snapshot(http).choice()
    if chosen is None:
        print(f"No RED metrics: neither {victoriametrics_url()} holds request histograms "
              f"nor does the collector's page {metrics_url()} answer.")  # fmt: skip
        return False
    show(*chosen)
    return True


def main() -> int:
    try:
        with httpx.Client() as http:
            return 0 if report(http) else 1
    except env.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
