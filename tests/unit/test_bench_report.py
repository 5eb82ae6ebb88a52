"""The benchmark's arithmetic (``bench/report.py``): where a read goes, and the verdicts.

Synthetic figures only: ``make bench`` measures, these tests check what it concludes.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import report

pytestmark = pytest.mark.unit


def _round(cpu: float, p50_ms: float, rps: float, **extra: Any) -> dict[str, Any]:
    return {
        "rps": rps,
        "cpu_us": cpu,
        "cpu_us_by": {"gateway": cpu / 2, "users": cpu / 4, "db": cpu / 4},
        "p50_us": p50_ms * 1000,
        "p99_us": p50_ms * 2000,
        "voluntary_cs": 10.0,
        "requests": 1000,
        "requests_c1": 100,
        "spans": 0,
        "spans_c1": 0,
        "errors": 0,
        **extra,
    }


def _runs(**changes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    runs = {
        "bare": [_round(100, 0.1, 10_000)],
        "httpx": [_round(2000, 1.6, 1_000)],
        "httpx-aiohttp": [_round(1100, 1.0, 2_000)],
        "aiosqlite": [_round(150, 0.15, 8_000)],
        "db today": [_round(900, 0.5, 1_500)],
        "three bare hops": [_round(4000, 3.0, 300)],
        "chain off": [_round(5000, 4.0, 250)],
        "chain s=1.0": [_round(6000, 5.0, 200, spans=7000, spans_c1=700)],
        "fastapi chain off": [_round(6000, 5.0, 200)],
        "fastapi chain s=1.0": [_round(9000, 7.0, 125, spans=8000, spans_c1=800)],
    }
    return {**runs, **changes}


def _rows(runs: dict[str, Any], **env: dict[str, str]) -> dict[str, dict[str, Any]]:
    def row(name: str) -> dict[str, Any]:
        kind = "chain" if name.startswith("chain") else "other"
        off = "s=" not in name
        return {"kind": kind, "traced": not off,
                "env": env.get(name, {"OTEL_SDK_DISABLED": "true"} if off else {})}  # fmt: skip

    return {name: row(name) for name in runs}


def _targets(runs: dict[str, Any], **env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {t["label"].split(":")[0]: t for t in report.targets(runs, _rows(runs, **env))}


@pytest.mark.parametrize("key", ["cpu_us", "p50_ms"])
def test_the_parts_with_a_share_add_up_to_the_traced_read(key: str) -> None:
    runs = _runs()
    parts = report.chain_parts(report.summary(runs, _rows(runs)), key)
    traced = {"cpu_us": 6000, "p50_ms": 5.0}[key]
    assert sum(value for _, value, additive in parts if additive) == pytest.approx(traced)
    floor = [value for name, value, _ in parts if name.startswith("three bare hops")]
    assert floor == [{"cpu_us": 4000, "p50_ms": 3.0}[key]]


def test_a_missed_target_names_the_largest_part_of_the_untraced_read() -> None:
    targets = _targets(_runs())
    rps = targets["untraced chain req/s / bare handler's"]
    # 250 / 10,000 = 0.025x: met, so it names nothing.
    assert (rps["value"], rps["verdict"], rps["rest"]) == (0.025, "met", "")
    slow = _targets(_runs(**{"chain off": [_round(5000, 4.0, 150)]}))
    rps = slow["untraced chain req/s / bare handler's"]
    # The untraced read: 300 + 2,000 + 800 + 900 (hops) + 1,000 (own code) = 5,000 µs;
    # the two client calls (httpx on aiohttp's transport, as the services make them),
    # 2 x (1,100 - 100), are the largest part.
    assert rps["verdict"] == "missed"
    assert rps["rest"] == (
        "largest part: client call x2 (httpx-aiohttp minus bare), 40 % of the untraced read"
    )


def test_the_peer_ratios_compare_the_same_rounds() -> None:
    targets = _targets(_runs())
    traced = targets["traced chain req/s / FastAPI peer's traced"]
    assert (traced["value"], traced["verdict"]) == (1.6, "missed")  # 200 / 125
    assert traced["rest"].startswith("largest part: client call x2")
    untraced = targets["untraced chain req/s / FastAPI peer's untraced"]
    assert (untraced["value"], untraced["verdict"]) == (1.25, "missed")  # 250 / 200
    assert targets["traced chain req/s / untraced"]["verdict"] == "met"  # 0.8x


def test_a_missed_traced_target_says_what_tracing_adds_per_service() -> None:
    runs = _runs(**{"chain s=1.0": [_round(10000, 5.0, 125, spans=7000, spans_c1=700)]})
    traced = _targets(runs)["traced chain req/s / untraced"]
    assert (traced["value"], traced["verdict"]) == (0.5, "missed")
    assert traced["rest"] == (
        "tracing adds gateway +2,500, users +1,250, db +1,250 µs CPU per read, "
        "50 % of the traced read"
    )


def test_a_missed_traced_target_names_the_sdks_processor_metrics_when_measured() -> None:
    runs = _runs(**{
        "chain s=1.0": [_round(10000, 5.0, 125, spans=7000, spans_c1=700)],
        "chain s=1.0 no SDK counters": [_round(9000, 5.0, 140, spans=7000, spans_c1=700)],
    })  # fmt: skip
    traced = _targets(runs)["traced chain req/s / untraced"]
    assert traced["rest"].endswith(
        "; of that, 1,000 µs is the SDK's processor metrics behind /health "
        "(chain s=1.0 no SDK counters)"
    )


def test_a_missed_every_signal_target_splits_tracing_from_the_log_records() -> None:
    every = _targets(_echo_runs(20, 140))["chain req/s with every signal / untraced"]
    assert every["rest"] == (
        "of 2,000 µs CPU per read over the untraced chain, tracing and metrics take 1,000 "
        "(chain s=1.0 minus chain off) and the log records over OTLP 1,000 "
        "(chain every signal minus chain s=1.0)"
    )


def test_the_transport_target_waits_for_a_chain_row_on_httpx() -> None:
    transport = _targets(_runs())["chain CPU per read on aiohttp's transport, below httpx's"]
    assert transport["verdict"] == "not measured"
    assert transport["rest"] == "no untraced chain row with CELLO_HTTP_TRANSPORT=httpx"


def test_the_transport_target_compares_the_default_row_with_the_httpx_one() -> None:
    runs = _runs(**{"chain httpx off": [_round(8000, 6.0, 150)]})
    httpx = {"OTEL_SDK_DISABLED": "true", "CELLO_HTTP_TRANSPORT": "httpx"}
    transport = _targets(runs, **{"chain httpx off": httpx})[
        "chain CPU per read on aiohttp's transport, below httpx's"
    ]
    assert (transport["shown"], transport["verdict"]) == ("38 %", "met")  # 1 - 5,000 / 8,000
    # A row that names aiohttp is on it as well; traced rows are never compared.
    aiohttp = {"OTEL_SDK_DISABLED": "true", "CELLO_HTTP_TRANSPORT": "aiohttp"}
    rows = _rows(runs, **{"chain off": aiohttp, "chain httpx off": httpx})
    assert report.transport_rows(rows) == ("chain httpx off", "chain off")


def _echo_runs(metrics_cpu: float, every_signal_rps: float) -> dict[str, list[dict[str, Any]]]:
    return _runs(**{
        "echo off": [_round(150, 0.2, 9_000)],
        "echo traces": [_round(300, 0.3, 5_000)],
        "echo s=1.0": [_round(300 + metrics_cpu, 0.3, 4_800)],
        "echo s=1.0 log line": [_round(330 + metrics_cpu, 0.3, 4_500)],
        "echo s=1.0 log": [_round(380 + metrics_cpu, 0.3, 4_000)],
        "chain every signal": [_round(7000, 6.0, every_signal_rps)],
    })  # fmt: skip


def test_each_signal_is_its_row_minus_the_one_before_in_bare_handlers() -> None:
    costs = {name: (us, share) for name, _, us, share in report.signal_costs(_echo_runs(20, 160))}
    assert costs == {
        "traces at sampling 1.0": (150, 1.5),
        "metrics": (20, 0.2),
        "one INFO record as a JSON line on stderr": (30, 0.3),
        "the same record over OTLP": (50, 0.5),
    }


@pytest.mark.parametrize(("metrics_cpu", "verdict"), [(20, "met"), (30, "missed")])
def test_metrics_may_add_a_quarter_of_the_bare_handlers_cpu(
    metrics_cpu: float, verdict: str
) -> None:
    targets = _targets(_echo_runs(metrics_cpu, 160))
    metrics = targets["metrics' CPU per request / bare handler's (echo s=1.0 minus echo traces)"]
    assert (metrics["value"], metrics["verdict"]) == (metrics_cpu / 100, verdict)


@pytest.mark.parametrize(("rps", "verdict"), [(150, "met"), (140, "missed")])
def test_the_chain_with_every_signal_keeps_six_tenths_of_the_untraced_rate(
    rps: float, verdict: str
) -> None:
    every = _targets(_echo_runs(20, rps))["chain req/s with every signal / untraced"]
    assert (every["value"], every["verdict"]) == (rps / 250, verdict)


def test_spans_missing_at_saturation_are_counted_against_the_one_connection_rate() -> None:
    # 7 spans per request at one connection; 1,000 requests under load delivered 6,990.
    rows = [_round(1, 1, 1, spans=6990, spans_c1=700), _round(1, 1, 1, spans=7000, spans_c1=700)]
    assert report.lost_spans(rows) == (10, 14_000)
    # A request still in flight when wrk stopped adds spans but no request: 7.07 is 7.
    assert report.lost_spans([_round(1, 1, 1, spans=7010, spans_c1=707)]) == (0, 7000)
    runs = _runs(**{"chain s=1.0": [_round(6000, 5.0, 200, spans=6990, spans_c1=700)]})
    lost = _targets(runs)["no span lost at saturation (every traced row)"]
    assert (lost["verdict"], lost["shown"]) == ("missed", "10 of 15,000")


def test_a_setting_is_compared_with_db_today_on_their_least_disturbed_rounds() -> None:
    def variant(cpu: list[float]) -> dict[str, Any]:
        rounds = [{"cpu_us": c, "wall_us": c, "qps": 1.0, "voluntary_cs": 1.0,
                   "loop_voluntary_cs": 1.0} for c in cpu]  # fmt: skip
        return {"what": "", "round_trips": 5.0, "c1": rounds, "c16": rounds,
                "c1_median": rounds[1], "c16_median": rounds[1]}  # fmt: skip

    # Other work on the machine slows some rounds down (2,000, 1,900), never speeds one up.
    sql = {"variants": {"db today": variant([700, 2000, 900]), "lifo": variant([1900, 600, 800])}}
    by = {r["name"]: r for r in report.sql_table(sql)}
    assert (by["lifo"]["cpu_us"], by["lifo"]["vs_db_us"]) == (600, -100)
    assert by["db today"]["vs_db_us"] == 0


def test_a_missed_metrics_target_names_the_sdks_own_record() -> None:
    runs = _echo_runs(30, 160)
    floor = {"histogram": 11.0, "histogram_no_exemplar": 9.0}

    (metrics,) = [t for t in report.targets(runs, _rows(runs), floor) if "metrics'" in t["label"]]

    assert metrics["verdict"] == "missed"
    assert metrics["rest"].startswith("the SDK's own record of the one measurement: 11 µs")
    assert "2 µs of it the trace-based exemplar" in metrics["rest"]


def test_the_native_stack_targets_name_the_largest_component_when_missed() -> None:
    stack = {"up_s": 9.8, "idle_s": 30, "total_mib": 1100,
             "rss_mib": {"zipkin": 700, "jaeger": 60, "gateway": 340}}  # fmt: skip
    memory, start = report.stack_targets(stack)
    assert (memory["shown"], memory["verdict"]) == ("1,100 MiB after 30 s idle", "missed")
    assert memory["rest"] == "largest part: zipkin, 700 MiB"
    assert (start["shown"], start["verdict"]) == ("9.8 s", "met")
    memory, start = report.stack_targets({**stack, "total_mib": 600, "up_s": 61})
    assert (memory["verdict"], memory["rest"], start["verdict"]) == ("met", "", "missed")


def test_a_stack_left_running_is_not_measured() -> None:
    skipped = report.stack_targets({"skipped": "a stack is already running (make down first)"})
    assert [t["verdict"] for t in skipped] == ["not measured", "not measured"]
    assert skipped[0]["rest"] == "a stack is already running (make down first)"
