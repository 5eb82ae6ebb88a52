"""Turn the raw results into medians, target verdicts, markdown, a chart and a JSON file."""

from __future__ import annotations

import collections
import json
import re
import statistics
from pathlib import Path
from typing import Any

# Frames every stack has (thread start-up, the event loop): they say nothing about cost.
_PLUMBING = re.compile(
    r"^(process |thread |Thread\.|_bootstrap|<module> \(bench/|App\.run |start_loop|"
    r"BaseEventLoop\.(run_forever|_run_once)|Handle\._run|_run_module|_run_code)"
)


def summarise_profile(path: Path) -> dict[str, Any]:
    """Shares per thread and the top functions (self and inclusive) of a py-spy raw file."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        threads[_thread_label(frames)] += n
        code = [f for f in frames if not f.startswith(("process ", "thread "))]
        if code:
            own[code[-1]] += n
        for frame in set(code):
            if not _PLUMBING.match(frame):
                inclusive[frame] += n

    def share(counter: collections.Counter[str], top: int) -> list[tuple[str, float]]:
        return [(name, 100 * n / total) for name, n in counter.most_common(top)]

    return {
        "file": path.name,
        "samples": total,
        "threads": share(threads, 8),
        "self": share(own, 20),
        "inclusive": share(inclusive, 25),
    }


def _thread_label(frames: list[str]) -> str:
    # With --subprocesses a child's stack starts with its parent's process frame too.
    process = ([f for f in frames if f.startswith("process ")] or [""])[-1]
    thread = next((f for f in frames if f.startswith("thread ")), "thread")
    command = re.search(r'"(.*)"', process)
    program = command.group(1).split("/")[-1][:60] if command else ""
    return f"{re.sub(r'\(\d+\)', '', thread).strip()} in {program or 'the service'}"


def _med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _paired(rows: list[dict], base: list[dict], key: str, ratio: bool) -> float:
    """Median over rounds of (row - base) or (row / base): pairs share a round's noise."""
    pairs = zip(rows, base, strict=False)
    return statistics.median(a[key] / b[key] if ratio else a[key] - b[key] for a, b in pairs)


def echo_table(results: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """One summary row per echo configuration."""
    off = results["off"]
    rows = []
    for name, runs in results.items():
        ratio = float(name[2:]) if name.startswith("s=") else 0.0
        requests = sum(r["requests"] for r in runs)
        rows.append(
            {
                "config": name,
                "rps": _med(runs, "rps"),
                "x_off": _paired(runs, off, "rps", ratio=True),
                "cpu_us": _med(runs, "cpu_us"),
                "added_us": _paired(runs, off, "cpu_us", ratio=False),
                "p50_ms": _med(runs, "p50_us") / 1000,
                "p99_ms": _med(runs, "p99_us") / 1000,
                "spans": sum(r["spans"] for r in runs),
                "expected": round(requests * ratio),
                "dropped": sum(r["dropped"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
            }
        )
    return rows


def chain_table(results: dict[str, dict[str, list[dict]]]) -> list[dict[str, Any]]:
    """One summary row per chain configuration and path."""
    rows = []
    for path, configs in results.items():
        for name, runs in configs.items():
            base = configs[name.split()[0] + " off"]
            requests = sum(r["requests"] for r in runs)
            rows.append(
                {
                    "path": path,
                    "config": name,
                    "rps": _med(runs, "rps"),
                    "x_off": _paired(runs, base, "rps", ratio=True),
                    "cpu_us": _med(runs, "cpu_us"),
                    "added_per_service_us": _paired(runs, base, "cpu_us", ratio=False) / 3,
                    "p50_ms": _med(runs, "p50_us") / 1000,
                    "p99_ms": _med(runs, "p99_us") / 1000,
                    "spans_per_request": sum(r["spans"] for r in runs) / max(1, requests),
                    "dropped": sum(r["dropped"] for r in runs),
                    "errors": sum(r["errors"] for r in runs),
                }
            )
    return rows


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _at_most(measured: float | None, limit: float, unit: str) -> tuple[str, str]:
    if measured is None:
        return "n/a", "skipped"
    if measured <= limit:
        return f"{_num(measured)} {unit}", "met"
    return f"{_num(measured)} {unit}", f"missed by {_num(measured - limit)} {unit}"


def _at_least(measured: float | None, limit: float, unit: str) -> tuple[str, str]:
    if measured is None:
        return "n/a", "skipped"
    if measured >= limit:
        return f"{_num(measured)}{unit}", "met"
    return f"{_num(measured)}{unit}", f"missed: {limit / measured:.2g}x short"


def targets(echo: list[dict], chain: list[dict], stack: dict[str, Any]) -> list[tuple[str, ...]]:
    """(target, measured, verdict) for every target of the issue."""
    by = {r["config"]: r for r in echo}
    cell = {(r["path"], r["config"]): r for r in chain}
    full = by["s=1.0"]
    traced_chain = [r for r in chain if r["config"] == "cello s=1.0"]
    dropped = full["dropped"] + sum(r["dropped"] for r in traced_chain)
    lost = max(0, full["expected"] - full["spans"])
    ttt = stack.get("time_to_trace") or {}
    rss = stack.get("idle_rss")
    rows = [
        ("sampling 1.0 + export: added CPU ≤ 50 µs/request (echo)",
         *_at_most(full["added_us"], 50, "µs")),
        ("sampling 1.0 + export: added CPU ≤ 50 µs/request per service (chain, read)",
         *_at_most(cell["read", "cello s=1.0"]["added_per_service_us"], 50, "µs")),
        ("sampling 1.0: throughput ≥ 0.45x untraced (echo)", *_at_least(full["x_off"], 0.45, "x")),
        ("unsampled (sampling 0): added CPU ≤ 5 µs/request", *_at_most(by["s=0"]["added_us"], 5,
                                                                       "µs")),
        ("traced (1.0) p99 at 1 connection ≤ 1 ms (echo)", *_at_most(full["p99_ms"], 1, "ms")),
        ("no spans dropped at saturation (echo 1.0 + traced chain)",
         f"{dropped} dropped, {lost} missing of {full['expected']}",
         "met" if dropped == 0 and lost == 0 else "missed"),
    ]  # fmt: skip
    for backend in ("jaeger", "zipkin"):
        p95 = (ttt.get(backend) or {}).get("p95_ms")
        rows.append((f"time to trace p95 < 1 s ({backend})", *_at_most(p95, 1000, "ms")))
    for path in ("read", "write"):
        ratio = cell[path, "cello s=1.0"]["rps"] / cell[path, "fastapi s=1.0"]["rps"]
        rows.append((f"traced chain ≥ 3x the traced FastAPI peer ({path})",
                     *_at_least(ratio, 3, "x")))  # fmt: skip
    total = sum(rss.values()) if rss else None
    rows.append(("whole native stack idle < 1 GB RSS", *_at_most(total, 1024, "MiB")))
    return [tuple(r) for r in rows]


def _md(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def write(results: dict[str, Any], out: Path) -> str:
    """Write README.md, benchmarks.png and results.json under ``out``; return the markdown."""
    echo, chain = echo_table(results["echo"]), chain_table(results["chain"])
    stack = results["stack"]
    m = results["machine"]
    s = m["settings"]
    parts = [
        "# Benchmarks: what tracing costs\n",
        "Generated by `make bench` (`bench/run.sh`, `bench/run.py`); do not edit by hand. "
        "Each configuration is its own process, loaded by `wrk` on 127.0.0.1; the rounds go "
        "round-robin over the configurations and every figure is the median over rounds "
        "(ratios and added CPU are medians of per-round pairs). CPU is user+system time of "
        "the service's process tree (exporter children included) from `/proc`, divided by "
        "the requests served; the OTLP sink runs in its own process. Latency p50/p99 comes "
        "from a separate run at one connection. The harness reports; it asserts nothing.\n",
        f"- command: `make bench` (or `bench/run.sh`); runtime {results['runtime_s'] / 60:.1f} min",
        f"- date: {m['date']}; commit {m['commit']}",
        f"- machine: {m['cores']} cores, {m['cpu']}, {m['memory_gib']} GiB, {m['os']}, "
        f"kernel {m['kernel']}; Python {m['python']}; {m['wrk']}",
        f"- load average when the run started: {m['load_average']:.2f} (the machine is shared; "
        "read small differences as noise)",
        f"- settings: {s['duration']} s throughput runs at {s['connections']} connections "
        f"(chain {s['chain_connections']}), {s['latency_duration']} s latency runs at 1 "
        f"connection, {s['rounds']} rounds (chain {s['chain_rounds']}); service log level "
        f"{s['log_level']}\n",
        "## Targets\n",
        _md(["target", "measured", "verdict"], [list(r) for r in targets(echo, chain, stack)]),
        "\n## One service: the echo app (`bench/apps/echo.py`)\n",
        _md(
            [
                "config",
                "what",
                "req/s",
                "x off",
                "CPU µs/req",
                "added µs/req",
                "p50 c1 ms",
                "p99 c1 ms",
                "spans received / expected",
                "dropped",
                "errors",
            ],
            [
                [
                    r["config"],
                    results["echo_configs"][r["config"]],
                    _fmt(r["rps"]),
                    f"{r['x_off']:.2f}",
                    _fmt(r["cpu_us"], 1),
                    _fmt(r["added_us"], 1),
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r['spans']:,} / {r['expected']:,}" if r["config"].startswith("s=") else "-",
                    r["dropped"],
                    r["errors"],
                ]
                for r in echo
            ],
        ),
        "\n## The chain gateway -> users -> db (Cello vs the FastAPI peer, `bench/peer/`)\n",
        "read = `GET /api/users/{id}` of one user; write = `POST /api/users` with a unique "
        "e-mail per request (`bench/wrk/create_user.lua`; SQLite with synchronous=FULL, so "
        "the disk weighs in). CPU is the sum over the three services.\n",
        _md(
            [
                "path",
                "config",
                "req/s",
                "x off",
                "CPU µs/req (3 services)",
                "added µs/req per service",
                "p50 c1 ms",
                "p99 c1 ms",
                "spans/req",
                "dropped",
                "errors",
            ],
            [
                [
                    r["path"],
                    r["config"],
                    _fmt(r["rps"]),
                    f"{r['x_off']:.2f}",
                    _fmt(r["cpu_us"]),
                    _fmt(r["added_per_service_us"], 1),
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r['spans_per_request']:.2f}",
                    r["dropped"],
                    r["errors"],
                ]
                for r in chain
            ],
        ),
        "\n## Time to trace (full stack)\n",
    ]
    if "skipped" in stack:
        parts.append(f"skipped: {stack['skipped']}\n")
    else:
        ttt = stack["time_to_trace"]
        parts.append(_md(
            ["backend", "p50 ms", "p95 ms", "traces", "incomplete after 15 s"],
            [[b, f"{v['p50_ms']:.0f}" if v["p50_ms"] is not None else "-",
              f"{v['p95_ms']:.0f}" if v["p95_ms"] is not None else "-", v["traces"],
              v["incomplete_after_15s"]] for b, v in ttt.items()] if "skipped" not in ttt
            else [["-", "-", "-", "-", ttt["skipped"]]],
        ))  # fmt: skip
    parts.append("\n## Footprint (RSS, MiB, process tree)\n")
    rows = []
    for group, rss in results["footprint"].items():
        for component, idle in rss["idle"].items():
            rows.append([group, component, f"{idle:.0f}", f"{rss['peak'].get(component, 0):.0f}"])
    if "skipped" not in stack:
        for component, idle in stack["idle_rss"].items():
            peak = stack["peak_rss"].get(component, 0)
            rows.append(["stack", component, f"{idle:.0f}", f"{peak:.0f}"])
    parts.append(_md(["group", "component", "idle", "peak under load"], rows))
    if "skipped" in stack:
        parts.append("\nstack components: skipped (stack not running)")
    profile = results.get("profile")
    if profile:
        parts += [
            f"\n## Profile: echo at sampling 1.0 under load (py-spy, `{profile['file']}`)\n",
            f"{profile['samples']} samples of the threads holding the GIL (children included), "
            "at 200 Hz; the raw collapsed stacks are in the file (flamegraph.pl or speedscope "
            "read them).\n",
            _md(["thread", "% of samples"], [[t, f"{p:.1f}"] for t, p in profile["threads"]]),
            "\nTop functions by own time:\n",
            _md(["function", "% self"], [[f"`{f}`", f"{p:.1f}"] for f, p in profile["self"]]),
            "\nTop functions including callees (thread and event-loop plumbing left out):\n",
            _md(["function", "% incl."], [[f"`{f}`", f"{p:.1f}"] for f, p in profile["inclusive"]]),
        ]  # fmt: skip
    parts.append("\n![benchmarks](benchmarks.png)\n")
    text = "\n".join(parts)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    chart(results, out / "benchmarks.png")
    return text


def chart(results: dict[str, Any], path: Path) -> None:
    """Bars of the medians with every round as a dot: throughput, CPU, the chain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    panels = [
        (axes[0], results["echo"], "rps", "echo: requests/s"),
        (axes[1], results["echo"], "cpu_us", "echo: CPU µs per request"),
    ]
    for ax, data, key, title in panels:
        names = list(data)
        ax.bar(names, [statistics.median(r[key] for r in data[n]) for n in names], color="#7aa6c2")
        for i, n in enumerate(names):
            ax.plot([i] * len(data[n]), [r[key] for r in data[n]], "k.", markersize=4)
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
    ax = axes[2]
    configs = list(results["chain"]["read"])
    width = 0.4
    for offset, path_name in ((-width / 2, "read"), (width / 2, "write")):
        runs = results["chain"][path_name]
        xs = [i + offset for i in range(len(configs))]
        ax.bar(xs, [statistics.median(r["rps"] for r in runs[c]) for c in configs], width,
               label=path_name)  # fmt: skip
    ax.set_xticks(range(len(configs)), configs, rotation=30)
    ax.set_title("chain gateway -> users -> db: requests/s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    # Re-render README.md and the chart from a results.json (e.g. after changing the report).
    import sys

    source = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks/results.json")
    saved = json.loads(source.read_text())
    raw = source.parent / "profile-echo-s1.0.txt"
    if saved.get("profile") and raw.exists():
        saved["profile"] = summarise_profile(raw)
    print(write(saved, source.parent))
