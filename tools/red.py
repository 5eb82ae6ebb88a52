"""``python -m tools.red``: RED metrics per service from the collector's span_metrics connector.

The collector's ``span_metrics`` connector counts every span it receives, before any
sampling, and its ``prometheus`` exporter serves the result in the Prometheus text
format (``RED_METRICS_URL``, default ``http://127.0.0.1:8889/metrics``). This reads
that page with ``prometheus_client``'s parser and prints, per service, the requests its
SERVER spans saw, how many of them ended in ERROR, and the p50/p99 duration estimated
from the histogram buckets, the way Prometheus' ``histogram_quantile`` does. ``make demo``
ends with this table.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cello_telemetry import env

CALLS = "traces_span_metrics_calls_total"
DURATION_BUCKET = "traces_span_metrics_duration_milliseconds_bucket"
DURATION_COUNT = "traces_span_metrics_duration_milliseconds_count"
SERVER = "SPAN_KIND_SERVER"
ERROR = "STATUS_CODE_ERROR"


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
    samples = list(samples)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for sample in samples:
        if sample.name == DURATION_BUCKET and sample.labels.get("span_kind") == SERVER:
            le = float(sample.labels["le"])  # "+Inf" parses as inf
            buckets[sample.labels["service_name"]][le] += sample.value
    requests: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    for (service, status), count in server_calls(samples).items():
        requests[service] += count
        if status == ERROR:
            errors[service] += count
    return [
        Red(
            service,
            requests[service],
            errors[service],
            quantile(0.5, buckets[service]),
            quantile(0.99, buckets[service]),
        )
        for service in sorted(requests)
    ]


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


def metrics_url() -> str:
    """``RED_METRICS_URL``: the collector's span_metrics page."""
    return env.env_url("RED_METRICS_URL", "http://127.0.0.1:8889/metrics")


def report(http: httpx.Client) -> bool:
    """Print the RED table from the collector; say so (and return False) when it is not there."""
    url = metrics_url()
    try:
        rows = red(read(url, http))
    except httpx.HTTPError as exc:
        print(f"No RED metrics: the collector's metrics page {url} does not answer ({exc}).")
        return False
    except ValueError as exc:
        print(f"No RED metrics: {url} is not in the Prometheus text format ({exc}).")
        return False
    print(f"RED metrics per service from {url}")
    print("(SERVER spans since the collector started, every one counted before sampling;")
    print(" p50/p99 estimated from the histogram buckets):")
    print(table(rows) if rows else "    (no spans counted yet)")
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
