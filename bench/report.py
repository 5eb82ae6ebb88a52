"""Turn one run's raw results into ratios, target verdicts, markdown, a chart and JSON.

Every comparison is a median over rounds of a per-round ratio (or difference): the
two rows of a pair were measured minutes apart at most, on the same machine state.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Runs = Mapping[str, list[dict[str, Any]]]
TRANSPORT = "CELLO_HTTP_TRANSPORT"
#: The floor row of one client call on the library's default transport.
CLIENT = "httpx-aiohttp"
#: The traced chain without the SDK's processor metrics (the services' ``/health`` counters).
COUNTERS_OFF = "chain s=1.0 no SDK counters"


def _med(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def paired(runs: Runs, a: str, b: str, key: str, ratio: bool = True) -> float:
    """Median over rounds of ``a[key] / b[key]`` (or ``a - b``); NaN if a row is missing."""
    if a not in runs or b not in runs:
        return math.nan
    pairs = zip(runs[a], runs[b], strict=False)
    return float(statistics.median(x[key] / y[key] if ratio else x[key] - y[key] for x, y in pairs))


def added_share(runs: Runs, a: str, b: str, base: str, key: str = "cpu_us") -> float:
    """Median over rounds of ``(a - b) / base``: what ``a`` adds over ``b``, in ``base``s."""
    if any(n not in runs for n in (a, b, base)):
        return math.nan
    rounds = zip(runs[a], runs[b], runs[base], strict=False)
    return float(statistics.median((x[key] - y[key]) / z[key] for x, y, z in rounds))


def lost_spans(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(lost, expected) spans of a traced row's throughput runs.

    At one connection nothing queues, so that run's spans per request (every request of
    a row makes the same spans at sampling 1.0) is what each request of the throughput
    run must have delivered to the sink.
    """
    c1 = sum(r["spans_c1"] for r in rows) / max(1, sum(r["requests_c1"] for r in rows))
    # Requests still in flight when wrk stops are served but not counted, so a rate is a
    # little above the true one: its integer part is what every request made.
    expected = sum(math.floor(c1) * r["requests"] for r in rows)
    return max(0, expected - sum(r["spans"] for r in rows)), expected


def summary(runs: Runs, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """One line per row: medians, and ratios to the bare handler of the same rounds."""
    out = {}
    for name, r in runs.items():
        lost, expected = lost_spans(r) if rows[name]["traced"] else (0, 0)
        out[name] = {
            "rps": _med(r, "rps"),
            "x_bare": paired(runs, name, "bare", "rps"),
            "cpu_us": _med(r, "cpu_us"),
            "cpu_us_by": {
                k: statistics.median(x["cpu_us_by"][k] for x in r) for k in r[0]["cpu_us_by"]
            },
            "p50_ms": _med(r, "p50_us") / 1000,
            "p50_x_bare": paired(runs, name, "bare", "p50_us"),
            "p99_ms": _med(r, "p99_us") / 1000,
            "voluntary_cs": _med(r, "voluntary_cs"),
            "spans_per_request": sum(x["spans"] for x in r) / max(1, sum(x["requests"] for x in r)),
            "logs_per_request": sum(x.get("log_records", 0) for x in r)
            / max(1, sum(x["requests"] + x["requests_c1"] for x in r)),
            "lost": lost,
            "expected": expected,
            "errors": sum(x["errors"] for x in r),
        }
    return out


#: The row of :func:`chain_parts` that is tracing (left out of an untraced read).
TRACING = "tracing at sampling 1.0 (chain s=1.0 minus chain off)"


def chain_parts(s: Mapping[str, Mapping[str, Any]], key: str) -> list[tuple[str, float, bool]]:
    """Where a chain read's ``key`` (``cpu_us`` or ``p50_ms``) goes: (part, value, additive).

    Three bare handlers, two client calls (httpx on aiohttp's transport, as the
    services make them) and one query as db makes it make the three
    bare hops; what the measured three bare hops cost beyond those parts is the hops
    themselves (a process waking another); what the untraced chain costs beyond the
    three bare hops is the services' own code (validation, request ids, problem
    handling, the telemetry wrapper switched off); tracing is the traced chain minus the
    untraced one. The additive parts sum to the traced read.
    """
    bare, client, query = (s[n][key] for n in ("bare", CLIENT, "db today"))
    off, on, floor = s["chain off"][key], s["chain s=1.0"][key], s["three bare hops"][key]
    handlers, calls, sql = 3 * bare, 2 * (client - bare), query - bare
    return [
        ("Cello handler x3 (bare)", handlers, True),
        (f"client call x2 ({CLIENT} minus bare)", calls, True),
        ("SQLAlchemy query as db makes it (db today minus bare)", sql, True),
        ("  of which aiosqlite alone (minus bare)", s["aiosqlite"][key] - bare, False),
        ("the three hops beyond their parts (floor minus the three above)",
         floor - handlers - calls - sql, True),
        ("three bare hops, measured (the floor: the four above)", floor, False),
        ("the services' own code, untraced (chain off minus floor)", off - floor, True),
        (TRACING, on - off, True),
    ]  # fmt: skip


def largest(parts: list[tuple[str, float, bool]], traced: bool) -> tuple[str, float]:
    """The largest additive part and its share of the read (traced or untraced), in %."""
    additive = [(n, v) for n, v, add in parts if add and (traced or n != TRACING)]
    total = sum(value for _, value in additive)
    name, value = max(additive, key=lambda p: p[1])
    return name, 100 * value / total if total else 0.0


def transport_rows(rows: Mapping[str, Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """The untraced chain rows on httpx's transport and on aiohttp's, if the run had both.

    A row on httpx's own transport says ``CELLO_HTTP_TRANSPORT=httpx``; one on aiohttp's
    says ``=aiohttp``, or nothing (the library's default).
    """
    chains = {n: r for n, r in rows.items() if r["kind"] == "chain" and not r["traced"]}
    by = {n: r["env"].get(TRANSPORT, "aiohttp") for n, r in chains.items()}
    aiohttp = next((n for n, t in by.items() if t == "aiohttp"), None)
    httpx = next((n for n, t in by.items() if t == "httpx"), None)
    return httpx, aiohttp


def _verdict(value: float, limit: float, at_most: bool) -> str:
    if math.isnan(value):
        return "not measured"
    return "met" if (value <= limit if at_most else value >= limit) else "missed"


def targets(
    runs: Runs, rows: Mapping[str, Mapping[str, Any]], floor: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """The chain's targets as ratios of this run: limit, value, verdict, what holds the rest.

    ``floor`` is ``bench/floor.py``'s: the SDK's own cost of what a missed target needs.
    """
    s = summary(runs, rows)
    cpu, p50 = chain_parts(s, "cpu_us"), chain_parts(s, "p50_ms")

    def part(parts: list[tuple[str, float, bool]], traced: bool, what: str) -> str:
        name, share = largest(parts, traced)
        return f"largest part: {name}, {share:.0f} % of the {what}"

    httpx, aiohttp = transport_rows(rows)
    if httpx and aiohttp:
        transport = 1 - paired(runs, aiohttp, httpx, "cpu_us")
        transport_rest = part(cpu, False, "untraced read")
    else:
        transport, transport_rest = math.nan, f"no untraced chain row with {TRANSPORT}=httpx"
    traced_rest = _tracing_rest(s)
    every_rest = _every_signal_rest(s)
    traced = [n for n, r in rows.items() if r["traced"] and n in s]
    lost = sum(s[n]["lost"] for n in traced)
    expected = sum(s[n]["expected"] for n in traced)
    table = [
        ("untraced chain req/s / bare handler's", 0.02, False,
         paired(runs, "chain off", "bare", "rps"), part(cpu, False, "untraced read")),
        ("chain CPU per read on aiohttp's transport, below httpx's", 0.35, False,
         transport, transport_rest),
        ("chain p50 at 1 connection / bare handler's", 30.0, True,
         paired(runs, "chain off", "bare", "p50_us"), part(p50, False, "untraced p50")),
        ("traced chain req/s / untraced", 0.7, False,
         paired(runs, "chain s=1.0", "chain off", "rps"), traced_rest),
        ("traced chain req/s / FastAPI peer's traced", 1.8, False,
         paired(runs, "chain s=1.0", "fastapi chain s=1.0", "rps"), part(cpu, True, "traced read")),
        ("untraced chain req/s / FastAPI peer's untraced", 1.3, False,
         paired(runs, "chain off", "fastapi chain off", "rps"), part(cpu, False, "untraced read")),
        ("metrics' CPU per request / bare handler's (echo s=1.0 minus echo traces)", 0.25, True,
         added_share(runs, "echo s=1.0", "echo traces", "bare"), _metrics_rest(s, floor)),
        ("chain req/s with every signal / untraced", 0.6, False,
         paired(runs, "chain every signal", "chain off", "rps"), every_rest),
    ]  # fmt: skip
    out = []
    for label, limit, at_most, value, rest in table:
        verdict = _verdict(value, limit, at_most)
        out.append({"label": label, "target": f"{'≤' if at_most else '≥'} {limit:g}x",
                    "value": value, "verdict": verdict,
                    "rest": "" if verdict == "met" else rest})  # fmt: skip
    out[1]["target"] = "≥ 35 %"
    out[1]["shown"] = "-" if math.isnan(transport) else f"{100 * transport:.0f} %"
    out.append({"label": "no span lost at saturation (every traced row)", "target": "0 lost",
                "value": float(lost), "shown": f"{lost:,} of {expected:,}",
                "verdict": "met" if lost == 0 else "missed", "rest": ""})  # fmt: skip
    return out


def _tracing_rest(s: Mapping[str, Mapping[str, Any]]) -> str:
    """What tracing adds per service to the traced read, and the SDK's own counters' part."""
    on, off = s["chain s=1.0"]["cpu_us_by"], s["chain off"]["cpu_us_by"]
    added = {k: on[k] - v for k, v in off.items()}
    rest = (
        f"tracing adds {', '.join(f'{k} +{v:,.0f}' for k, v in added.items())} µs CPU per read, "
        f"{100 * sum(added.values()) / s['chain s=1.0']['cpu_us']:.0f} % of the traced read"
    )
    if COUNTERS_OFF in s:
        counters = s["chain s=1.0"]["cpu_us"] - s[COUNTERS_OFF]["cpu_us"]
        rest += (
            f"; of that, {counters:,.0f} µs is the SDK's processor metrics behind /health "
            f"({COUNTERS_OFF})"
        )
    return rest


def _every_signal_rest(s: Mapping[str, Mapping[str, Any]]) -> str:
    """The traced read's parts beyond the untraced one: tracing, then the log records."""
    if "chain every signal" not in s:
        return "no chain every signal row in this run"
    every, traced, off = (
        s[n]["cpu_us"] for n in ("chain every signal", "chain s=1.0", "chain off")
    )
    return (
        f"of {every - off:,.0f} µs CPU per read over the untraced chain, tracing and metrics "
        f"take {traced - off:,.0f} (chain s=1.0 minus chain off) and the log records over "
        f"OTLP {every - traced:,.0f} (chain every signal minus chain s=1.0)"
    )


def _metrics_rest(s: Mapping[str, Mapping[str, Any]], floor: Mapping[str, float] | None) -> str:
    """The SDK's own share of the edge's one histogram record, when the floor was measured."""
    if not floor or "histogram" not in floor:
        return "the edge's histogram record and the SDK's aggregation"
    one, plain = floor["histogram"], floor.get("histogram_no_exemplar", math.nan)
    return (
        f"the SDK's own record of the one measurement: {one:.0f} µs "
        f"({_x(one / s['bare']['cpu_us'])} the bare handler), {one - plain:.0f} µs of it the "
        "trace-based exemplar (`bench/floor.py`)"
    )


def sql_table(sql: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One line per SQLAlchemy variant: its least disturbed round, and its median.

    A query's CPU is a few hundred µs; on a shared machine some rounds of it take twice
    that (other work, stolen time), never less. So, as ``timeit`` does, a variant's cost
    is its best round, and its difference to db today is best round against best round.
    """
    variants = sql["variants"]
    base = variants.get("db today", {})
    best_base = min((r["cpu_us"] for r in base.get("c1", [])), default=math.nan)
    out = []
    for name, v in variants.items():
        if "skipped" in v:
            out.append({"name": name, "what": v["what"], "skipped": v["skipped"]})
            continue
        best = {mode: min(v[mode], key=lambda r: r["cpu_us"]) for mode in ("c1", "c16")}
        out.append({"name": name, "what": v["what"], "trips": v["round_trips"],
                    "cpu_us": best["c1"]["cpu_us"], "median_us": v["c1_median"]["cpu_us"],
                    "vs_db_us": best["c1"]["cpu_us"] - best_base,
                    "wall_us": best["c1"]["wall_us"],
                    "loop_sleeps": v["c1_median"]["loop_voluntary_cs"],
                    "switches": v["c1_median"]["voluntary_cs"],
                    "qps16": v["c16_median"]["qps"],
                    "cpu16_us": best["c16"]["cpu_us"]})  # fmt: skip
    return out


def _md(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _x(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}x"


def _n(value: float, digits: int = 0) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def findings(
    runs: Runs,
    rows: Mapping[str, Mapping[str, Any]],
    s: Mapping[str, Mapping[str, Any]],
    added: Mapping[str, float],
    floor: Mapping[str, float],
    sql: Mapping[str, Mapping[str, Any]],
) -> str:
    """The run's results in a few sentences, every figure from this run."""
    cpu = chain_parts(s, "cpu_us")
    calls = next(v for n, v, _ in cpu if n.startswith("client call"))
    cello, fastapi = added.values()
    sdk = floor["server_span"] + floor["encode"]
    lines = [
        f"- The chain serves {_x(paired(runs, 'chain off', 'fastapi chain off', 'rps'))} the "
        f"FastAPI peer's req/s untraced and "
        f"{_x(paired(runs, 'chain s=1.0', 'fastapi chain s=1.0', 'rps'))} traced, on "
        f"{_x(paired(runs, 'chain s=1.0', 'fastapi chain s=1.0', 'cpu_us'))} its CPU per "
        "traced read.",
        f"- Tracing a request costs Cello {cello:,.0f} µs of CPU, {_x(cello / sdk)} what the "
        f"SDK itself takes for the span and its encoding ({sdk:,.0f} µs); FastAPI's stock "
        f"instrumentation takes {fastapi:,.0f} µs.",
        f"- The two client calls take {calls:,.0f} µs, "
        f"{100 * calls / s['chain s=1.0']['cpu_us']:.0f} % of the traced read. One call costs "
        f"its caller {s['httpx']['cpu_us'] - s['bare']['cpu_us']:,.0f} µs on httpx's own "
        f"transport, {s['httpx-aiohttp']['cpu_us'] - s['bare']['cpu_us']:,.0f} µs on "
        f"aiohttp's, {s['aiohttp']['cpu_us'] - s['bare']['cpu_us']:,.0f} µs with aiohttp "
        "alone.",
    ]
    httpx, aiohttp = transport_rows({n: r for n, r in rows.items() if n in runs})
    if httpx and aiohttp:
        lines.append(
            f"- On aiohttp's transport the untraced chain serves "
            f"{_x(paired(runs, aiohttp, httpx, 'rps'))} the req/s it serves on httpx's own, on "
            f"{100 * (1 - paired(runs, aiohttp, httpx, 'cpu_us')):.0f} % less CPU per read."
        )
    signals = signal_costs(runs)
    if signals:
        lines.append(
            "- Per request, over the bare handler's own CPU: "
            + "; ".join(f"{name} {_n(us)} µs ({_x(share)})" for name, _, us, share in signals)
            + "."
        )
    today, before, alone = (
        sql.get(n, {}) for n in ("db today", "a transaction per read", "aiosqlite")
    )
    if all(v and "skipped" not in v for v in (today, before, alone)):
        lines.append(
            f"- A read as db makes it is {today['trips']:.0f} trips to aiosqlite's thread "
            "(SQLAlchemy's adaptor sends cursor, execute, fetchall and close) where aiosqlite "
            f"alone needs {alone['trips']:.0f}: {today['cpu_us'] - alone['cpu_us']:,.0f} µs more "
            "CPU per query. A transaction per read, SQLAlchemy's default, would add "
            f"{before['trips'] - today['trips']:.0f} trip and {before['vs_db_us']:+,.0f} µs; no "
            "setting measured here removes the adaptor's four calls or SQLAlchemy's own work."
        )
    return "\n".join(lines)


#: What each signal adds to a request: (name, the row with it, the row without it).
SIGNALS = (
    ("traces at sampling 1.0", "echo traces", "echo off"),
    ("metrics", "echo s=1.0", "echo traces"),
    ("one INFO record as a JSON line on stderr", "echo s=1.0 log line", "echo s=1.0"),
    ("the same record over OTLP", "echo s=1.0 log", "echo s=1.0 log line"),
)


def signal_costs(runs: Runs) -> list[tuple[str, str, float, float]]:
    """(signal, the rows compared, added CPU µs, as a share of the bare handler's CPU)."""
    return [
        (name, f"{a} minus {b}", paired(runs, a, b, "cpu_us", ratio=False),
         added_share(runs, a, b, "bare"))
        for name, a, b in SIGNALS
        if a in runs and b in runs
    ]  # fmt: skip


#: The native stack's limits (``bench/stack.py``): idle resident memory, and a warm start.
STACK_RSS_MIB, STACK_UP_S = 1024, 60


def stack_targets(stack: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The native stack's two targets, or why this run did not measure them."""
    memory = {"label": "native stack resident memory when idle", "target": f"≤ {STACK_RSS_MIB} MiB"}
    start = {"label": "warm deploy/stack.sh up (make up)", "target": f"≤ {STACK_UP_S} s"}
    if not stack or "skipped" in stack:
        why = stack.get("skipped", "not run")
        skipped = {"value": math.nan, "shown": "-", "verdict": "not measured", "rest": why}
        return [{**memory, **skipped}, {**start, **skipped}]
    rss, up = stack["total_mib"], stack["up_s"]
    name, largest = max(stack["rss_mib"].items(), key=lambda item: item[1])
    memory_met = rss <= STACK_RSS_MIB
    return [
        {**memory, "value": rss, "shown": f"{rss:,} MiB after {stack['idle_s']:.0f} s idle",
         "verdict": "met" if memory_met else "missed",
         "rest": "" if memory_met else f"largest part: {name}, {largest:,} MiB"},
        {**start, "value": up, "shown": f"{up:.1f} s", "rest": "",
         "verdict": "met" if up <= STACK_UP_S else "missed"},
    ]  # fmt: skip


def write(results: dict[str, Any], out: Path) -> str:
    """Write README.md, benchmarks.png and results.json under ``out``; return the markdown."""
    runs, rows, m = results["runs"], results["rows"], results["machine"]
    s, st = summary(runs, rows), m["settings"]
    floor, sql = results["floor"], sql_table(results["sql"])
    verdicts = targets(runs, rows, results["floor"]) + stack_targets(results.get("stack") or {})
    cpu = chain_parts(s, "cpu_us")
    added = {
        "Cello (cello_telemetry)": paired(runs, "echo traces", "echo off", "cpu_us", ratio=False),
        "FastAPI (stock instrumentation)": paired(
            runs, "fastapi echo s=1.0", "fastapi echo off", "cpu_us", ratio=False
        ),
    }
    by_sql = {r["name"]: r for r in sql}
    text = [
        "# Benchmarks: the template against FastAPI and the floors\n",
        "Generated by `make bench` (`bench/run.py`); do not edit by hand. Every row is its "
        "own process (or three), loaded by `wrk` over loopback; the rounds go round-robin "
        "over the rows, and each ratio is the median over rounds of that round's ratio. CPU "
        "is user+system time of the row's processes per request (the OTLP sink runs apart); "
        "p50 is from a run at one connection. The machine is shared: read the ratios, not "
        "the absolute figures.\n",
        f"- {m['date']}, commit {m['commit']}, {results['runtime_s'] / 60:.0f} min; "
        f"{m['cores']} cores ({m['cpu']}), load average {m['load_average']:.1f} at the start",
        f"- {st['rounds']} rounds of {st['duration']} s at {st['connections']} connections and "
        f"{st['latency_duration']} s at 1; Python {m['python']}, {m['wrk']}\n",
        "## In short\n",
        findings(runs, rows, s, added, floor, by_sql),
        "\n## Side by side\n",
        _md(["row", "what it measures", "req/s", "x bare", "CPU µs/req", "p50 ms (1 conn)",
             "p50 x bare", "spans/req", "log records/req", "lost spans", "errors"],
            [[f"**{n}**" if rows[n]["group"] == "chain" else n, rows[n]["what"], _n(r["rps"]),
              _x(r["x_bare"]), _n(r["cpu_us"]), f"{r['p50_ms']:.2f}", _x(r["p50_x_bare"]),
              f"{r['spans_per_request']:.2f}" if rows[n]["traced"] else "-",
              f"{r['logs_per_request']:.2f}" if rows[n]["traced"] else "-",
              r["lost"] if rows[n]["traced"] else "-", r["errors"]] for n, r in s.items()]),
        "\nThe floor rows are bare Cello apps doing one thing per request (`bench/apps/"
        "component.py`); a `+` row is the bare handler plus that one call, its CPU the "
        "caller's alone. The chain is `GET /api/users/{id}` through gateway, users and db "
        "(`tools.run`), against the FastAPI peer (`bench/peer/chain.py`: FastAPI, uvicorn, "
        "httpx, SQLAlchemy on aiosqlite, and the stock FastAPI, httpx and SQLAlchemy "
        "instrumentations).\n",
        "## Targets\n",
        _md(["target", "limit", "this run", "verdict", "what holds the rest"],
            [[t["label"], t["target"], t.get("shown") or _x(t["value"]), t["verdict"],
              t["rest"]] for t in verdicts]),
        "\n## Where a chain read goes (CPU µs, from the rows above)\n",
        _md(["part", "CPU µs", "share of the traced read"],
            [[n, _n(v), f"{100 * v / s['chain s=1.0']['cpu_us']:.0f} %" if add else ""]
             for n, v, add in cpu]),
        "\n## What tracing adds to one request, over the SDK's own cost\n",
        f"The SDK alone (`bench/floor.py`, no project code): {floor['server_span']:.0f} µs to "
        f"start and end a SERVER span from a `traceparent`, {floor['encode']:.0f} µs to "
        f"encode it to OTLP, {floor['unsampled']:.0f} µs when unsampled. Added CPU per "
        "request of the one-service rows, traces at sampling 1.0 minus telemetry off:\n",
        _md(["framework", "added CPU µs/request", "x the SDK's span + encoding"],
            [[k, _n(v), _x(v / (floor["server_span"] + floor["encode"]))]
             for k, v in added.items()]),
        "\n## What each signal adds to one request\n",
        "The echo rows, each against the one before it; the ratio is to the bare handler's "
        "own CPU per request (the metrics target: at most 0.25x). The log record is the "
        "edge's INFO access-log line, which every service writes per request at "
        "`LOG_LEVEL=INFO`.\n",
        _md(["signal", "rows compared", "added CPU µs/request", "x the bare handler's CPU"],
            [[name, compared, _n(us), _x(share)]
             for name, compared, us, share in signal_costs(runs)]),
        "\n## SQLAlchemy per query, one public setting at a time (`bench/sql.py`)\n",
        "One process reads user 1 with each variant in turn, round-robin. Trips are the "
        "jobs handed to aiosqlite's thread per query, counted through "
        "`create_async_engine(async_creator=...)`; loop sleeps are the event loop thread's "
        "voluntary context switches per query. CPU is the whole process's (loop and "
        f"driver threads), in the least disturbed of {results['sql']['settings']['rounds']} "
        "rounds (the median in brackets), as `timeit` reports: a round can only be slowed "
        "down by the rest of the machine.\n",
        _md(["variant", "setting", "trips", "CPU µs: best (median)", "vs db today", "wall µs",
             "loop sleeps", "switches", "queries/s at 16", "CPU µs at 16"],
            [[r["name"], r["what"], "-", "-", "-", "-", "-", "-", "-", r["skipped"]]
             if "skipped" in r else
             [r["name"], r["what"], _n(r["trips"], 1),
              f"{_n(r['cpu_us'])} ({_n(r['median_us'])})",
              "-" if r["name"] == "db today" else f"{r['vs_db_us']:+,.0f}",
              _n(r["wall_us"]), _n(r["loop_sleeps"], 1), _n(r["switches"], 1), _n(r["qps16"]),
              _n(r["cpu16_us"])] for r in sql]),
    ]  # fmt: skip
    text.append("\n![req/s and CPU per request of every row](benchmarks.png)\n")
    markdown = "\n".join(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(markdown)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    chart(s, rows, out / "benchmarks.png")
    return markdown


def chart(
    s: Mapping[str, Mapping[str, Any]], rows: Mapping[str, Mapping[str, Any]], path: Path
) -> None:
    """Two bar panels, log scale: req/s as a multiple of the bare handler's, CPU per request."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(s)
    colours = {"floor": "#9bb7c9", "service": "#5d8fb0", "chain": "#2f5f86"}
    colour = [colours.get(rows[n]["group"], "#9bb7c9") for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    panels = (("x_bare", "req/s, x the bare handler's"), ("cpu_us", "CPU µs per request"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        ax.barh(names, [s[n][key] for n in names], color=colour)
        ax.set_title(title)
        ax.set_xscale("log")
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    # Re-render README.md and the chart from a results.json (after changing the report).
    import sys

    source = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks/results.json")
    print(write(json.loads(source.read_text()), source.parent))
