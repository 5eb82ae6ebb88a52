"""``make bench``: what a user of this template chooses between, measured side by side.

The rows (``ROWS``) are the floors (a bare Cello handler; one client call and one query,
each in a bare app, ``bench/apps/component.py``), one service (``bench/apps/echo.py``
and the FastAPI peer's), and the gateway -> users -> db chain (this repository's
services, and the FastAPI peer's with its stock instrumentation, ``bench/peer/``), each
untraced and traced. Every row runs as its own process(es), all started up front; the
rounds go round-robin over the rows, so the drift of a shared machine hits all alike,
and the report keeps medians of per-round ratios. Before the rounds, each in a fresh
process: the SDK's own cost per operation (``bench/floor.py``) and SQLAlchemy's cost
per query, one setting at a time (``bench/sql.py``). Settings are ``BENCH_*`` variables
(``Settings``); results go to ``docs/benchmarks/`` (``bench/out/`` with
``BENCH_QUICK=1``). The harness measures and reports; it never fails on a timing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench import procs, report
from bench.load import wrk
from bench.otlp_sink import ROW
from tools.run import ServiceGroup, chain

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long and how often; ``BENCH_QUICK=1`` shrinks everything for development."""

    quick: bool = os.environ.get("BENCH_QUICK") == "1"
    duration: float = float(os.environ.get("BENCH_DURATION", 2 if quick else 5))
    latency_duration: float = float(os.environ.get("BENCH_LATENCY_DURATION", 1 if quick else 3))
    rounds: int = int(os.environ.get("BENCH_ROUNDS", 1 if quick else 3))
    connections: int = int(os.environ.get("BENCH_CONNECTIONS", 16))
    log_level: str = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    only: str = os.environ.get("BENCH_ONLY", "")  # a regular expression: the rows to run
    out: Path = Path(
        os.environ.get("BENCH_OUT", ROOT / ("bench/out" if quick else "docs/benchmarks"))
    )


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the table: what it measures, how it starts, the environment it adds.

    ``kind`` is ``component`` (``bench/apps/component.py`` doing ``component``, calling
    the helper app ``calls``), ``hops`` (three bare apps in a row), ``echo``, ``peer-echo``,
    ``chain`` (this repository's three services, ``tools.run``) or ``peer-chain``.
    """

    group: str  # "floor", "service" or "chain": where the row sits in the table
    what: str
    kind: str
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    component: str = ""
    calls: str = ""

    @property
    def traced(self) -> bool:
        untraced = self.env.get("OTEL_SDK_DISABLED") == "true"
        return self.kind not in ("component", "hops") and not untraced

    @property
    def path(self) -> str:
        return "/api/users/{user}" if self.kind.endswith("chain") else "/"


OFF = {"OTEL_SDK_DISABLED": "true"}
ON = {"OTEL_TRACES_SAMPLER_ARG": "1.0"}
INFO = {"LOG_LEVEL": "INFO"}  # the access-log records too (the bench's default is WARNING)
TRANSPORT = report.TRANSPORT
#: The client component the chain's calls match (the library's default transport).
CLIENT = "httpx-aiohttp"

ROWS: dict[str, Row] = {
    "bare": Row("floor", "bare cello.App, an async handler returning a dict", "component",
                component="bare"),
    "httpx": Row("floor", "+ one httpx GET to a bare app (httpx's own transport)", "component",
                 component="httpx", calls="bare"),
    "httpx-aiohttp": Row("floor", "+ the same GET, httpx on httpx_aiohttp.AiohttpTransport",
                         "component", component="httpx-aiohttp", calls="bare"),
    "aiohttp": Row("floor", "+ the same GET, aiohttp.ClientSession alone", "component",
                   component="aiohttp", calls="bare"),
    "aiosqlite": Row("floor", "+ one SELECT by id, aiosqlite alone", "component",
                     component="aiosqlite"),
    "db today": Row("floor", "+ the same SELECT through db's UserStore.get", "component",
                    component="db today"),
    "three bare hops": Row("floor", "httpx-aiohttp -> httpx-aiohttp -> db today: three bare apps",
                           "hops"),
    "echo off": Row("service", "cello_telemetry.App, OTEL_SDK_DISABLED=true", "echo", OFF),
    "echo traces": Row("service", "cello_telemetry.App, sampling 1.0, traces only, OTLP/gRPC",
                       "echo", {**ON, "OTEL_METRICS_EXPORTER": "none"}),
    "echo s=1.0": Row("service", "the same, traces and metrics (the default)", "echo", ON),
    "echo s=1.0 log line": Row("service", "+ its INFO access-log record, a JSON line on stderr",
                               "echo", {**ON, **INFO, "OTEL_LOGS_EXPORTER": "none"}),
    "echo s=1.0 log": Row("service", "+ that record over OTLP too: every signal", "echo",
                          {**ON, **INFO}),
    "fastapi echo off": Row("service", "FastAPI + uvicorn, no instrumentation", "peer-echo", OFF),
    "fastapi echo s=1.0": Row("service", "FastAPI + its stock instrumentation, OTLP/gRPC",
                              "peer-echo", ON),
    "chain off": Row("chain", "gateway -> users -> db, OTEL_SDK_DISABLED=true", "chain", OFF),
    "chain httpx off": Row("chain", "the same, httpx's own transport (CELLO_HTTP_TRANSPORT=httpx)",
                           "chain", {**OFF, TRANSPORT: "httpx"}),
    "chain s=1.0": Row("chain", "the chain, sampling 1.0, traces and metrics over OTLP/gRPC",
                       "chain", ON),
    "chain every signal": Row("chain", "+ each service's INFO access-log record over OTLP",
                              "chain", {**ON, **INFO}),
    report.COUNTERS_OFF: Row("chain", "chain s=1.0 without the SDK's processor metrics "
                             "(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=false)", "chain",
                             {**ON, "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "false"}),
    "fastapi chain off": Row("chain", "the FastAPI peer, no instrumentation", "peer-chain", OFF),
    "fastapi chain s=1.0": Row("chain", "the FastAPI peer, its stock instrumentation",
                               "peer-chain", ON),
}  # fmt: skip


@dataclasses.dataclass
class Target:
    """Something under load: its URL, its processes, and its row in the sink."""

    url: str
    path: str
    pids: dict[str, int]  # component -> pid (its process tree is measured)
    row: str  # bench.row in the sink ("" when untraced)
    rusage: list[str] = dataclasses.field(default_factory=list)  # /rusage URLs, if any

    def cpu_by(self) -> dict[str, float]:
        """CPU seconds so far of each component's process tree."""
        return {
            name: sum(procs.cpu_seconds(p) for p in procs.tree(pid))
            for name, pid in self.pids.items()
        }

    def switches(self) -> tuple[int, int]:
        """Voluntary and involuntary context switches so far, over every process."""
        if self.rusage:
            counts = [procs.get_json(url) for url in self.rusage]
            return sum(c["voluntary"] for c in counts), sum(c["involuntary"] for c in counts)
        pairs = [procs.switches(p) for pid in self.pids.values() for p in procs.tree(pid)]
        return sum(v for v, _ in pairs), sum(i for _, i in pairs)


def slug(name: str) -> str:
    """A row's name as a resource attribute value (no spaces, commas or equals signs)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name)


class Bench:
    """One run: the sink, the processes, the measurements."""

    def __init__(self, settings: Settings, work: Path) -> None:
        self.s = settings
        self.work = work
        self.processes = procs.Processes(work)
        self.groups: list[ServiceGroup] = []
        self.helpers: dict[str, str] = {}  # helper app -> URL
        grpc_port, self.sink_port = procs.free_port(), procs.free_port()
        self.otlp = f"http://127.0.0.1:{grpc_port}"
        self.processes.start(
            "sink", ["-m", "bench.otlp_sink", str(grpc_port), str(self.sink_port)], {},
            f"http://127.0.0.1:{self.sink_port}/",
        )  # fmt: skip

    def close(self) -> None:
        """Stop everything this run started."""
        for group in self.groups:
            group.stop()
        self.groups.clear()
        self.processes.stop_all()

    def sink_spans(self, row: str) -> int:
        return int(procs.get_json(f"http://127.0.0.1:{self.sink_port}/").get(row, 0))

    def sink_logs(self, row: str) -> int:
        return int(procs.get_json(f"http://127.0.0.1:{self.sink_port}/logs").get(row, 0))

    def settle(self, row: str) -> int:
        """Wait until the row's spans stop arriving at the sink; return the count."""
        last, deadline = -1, time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.4)  # twice the 200 ms batch delay
            now = self.sink_spans(row)
            if now == last:
                break
            last = now
        return last

    # -- starting the rows ---------------------------------------------------------

    def _component(self, name: str, component: str, calls: str = "") -> tuple[str, int]:
        port = procs.free_port()
        env = {"PORT": str(port), "BENCH_COMPONENT": component, "DOWNSTREAM_URL": calls,
               "DATABASE_URL": f"sqlite+aiosqlite:///{self.work / 'component.db'}"}  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        pid = self.processes.start(f"component-{slug(name)}", ["bench/apps/component.py"], env,
                                   url + "/health")  # fmt: skip
        return url, pid

    def _helper(self, name: str, component: str, calls: str = "") -> str:
        """A helper app that rows call (not measured), started once."""
        if name not in self.helpers:
            self.helpers[name] = self._component(f"helper {name}", component, calls)[0]
        return self.helpers[name]

    def start(self, name: str, row: Row) -> Target:
        """Start the processes of one row and wait until they answer."""
        traced_env = {ROW: slug(name)} if row.traced else {}
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp,
            "OTEL_RESOURCE_ATTRIBUTES": ",".join(f"{k}={v}" for k, v in traced_env.items()),
            "LOG_LEVEL": self.s.log_level,
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.work / slug(name)}.db",
            **row.env,
        }
        target_row = slug(name) if row.traced else ""
        if row.kind == "component":
            calls = self._helper("bare", "bare") if row.calls else ""
            url, pid = self._component(name, row.component, calls)
            return Target(url, row.path, {name: pid}, "", [url + "/rusage"])
        if row.kind == "hops":
            hop3 = self._helper("hop3", "db today")
            hop2 = self._helper("hop2", CLIENT, hop3)
            url, pid = self._component(name, CLIENT, hop2)
            pids = {"hop1": pid, "hop2": procs.pid_on_port(_port(hop2)) or 0,
                    "hop3": procs.pid_on_port(_port(hop3)) or 0}  # fmt: skip
            rusage = [f"{u}/rusage" for u in (url, hop2, hop3)]
            return Target(url, row.path, pids, "", rusage)
        if row.kind in ("echo", "peer-echo"):
            port = procs.free_port()
            args = ["bench/apps/echo.py"] if row.kind == "echo" else ["-m", "bench.peer.chain"]
            extra = {"PORT": str(port), "BENCH_ROLE": "echo", "OTEL_SERVICE_NAME": "echo"}
            url = f"http://127.0.0.1:{port}"
            pid = self.processes.start(slug(name), args, {**env, **extra}, url + "/health")
            return Target(url, row.path, {"echo": pid}, target_row)
        ports = {role: procs.free_port() for role in ("gateway", "users", "db")}
        if row.kind == "chain":
            group = ServiceGroup(chain(ports["gateway"], ports["users"], ports["db"]), env,
                                 self.work / slug(name))  # fmt: skip
            self.groups.append(group)
            try:
                group.start()
            except RuntimeError as exc:  # a shared machine: one more try, then give up
                print(f"{name}: {exc}; starting it once more")
                group.start()
        else:
            downstream = {"gateway": ports["users"], "users": ports["db"], "db": 0}
            for role in ("db", "users", "gateway"):
                self.processes.start(
                    f"{slug(name)}-{role}", ["-m", "bench.peer.chain"],
                    {**env, "BENCH_ROLE": role, "PORT": str(ports[role]),
                     "OTEL_SERVICE_NAME": f"peer-{role}",
                     "DOWNSTREAM_URL": f"http://127.0.0.1:{downstream[role]}"},
                    f"http://127.0.0.1:{ports[role]}/health",
                )  # fmt: skip
        url = f"http://127.0.0.1:{ports['gateway']}"
        body = json.dumps({"name": "Ada", "email": "ada@example.com"}).encode()
        user = procs.get_json(url + "/api/users", data=body)["id"]
        pids = {role: procs.pid_on_port(port) or 0 for role, port in ports.items()}
        return Target(url, row.path.format(user=user), pids, target_row)

    # -- measuring -----------------------------------------------------------------

    def measure(self, target: Target) -> dict[str, Any]:
        """One throughput run (CPU, switches, spans), then one latency run at 1 connection.

        The spans of each run are counted once they have all arrived; the latency run's
        spans per request (nothing queues at one connection) is the count the
        throughput run must reach for no span to be lost.
        """
        url = target.url + target.path
        spans0 = self.sink_spans(target.row) if target.row else 0
        logs0 = self.sink_logs(target.row) if target.row else 0
        cpu0, switches0 = target.cpu_by(), target.switches()
        load = wrk(url, self.s.duration, self.s.connections)
        cpu = {name: t - cpu0[name] for name, t in target.cpu_by().items()}
        switches1 = target.switches()
        spans1 = self.settle(target.row) if target.row else 0
        latency = wrk(url, self.s.latency_duration, 1)
        spans2 = self.settle(target.row) if target.row else 0
        logs1 = self.sink_logs(target.row) if target.row else 0  # both runs' records
        n = max(1, load.requests)
        return {
            "rps": load.rps,
            "requests": load.requests,
            "cpu_us": sum(cpu.values()) * 1e6 / n,
            "cpu_us_by": {name: t * 1e6 / n for name, t in cpu.items()},
            "p50_us": latency.p50_us,
            "p99_us": latency.p99_us,
            "load_p50_us": load.p50_us,
            "load_p99_us": load.p99_us,
            "voluntary_cs": (switches1[0] - switches0[0]) / n,
            "involuntary_cs": (switches1[1] - switches0[1]) / n,
            "spans": spans1 - spans0,
            "log_records": logs1 - logs0,
            "spans_c1": spans2 - spans1,
            "requests_c1": latency.requests,
            "errors": load.errors + load.non2xx + latency.errors + latency.non2xx,
        }

    def rounds(self, targets: dict[str, Target]) -> dict[str, list[dict[str, Any]]]:
        """Warm every row up, then measure them all, round-robin, ``rounds`` times."""
        for target in targets.values():
            wrk(target.url + target.path, 1, self.s.connections)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for round_ in range(self.s.rounds):
            for name, target in targets.items():
                results[name].append(self.measure(target))
                _progress(f"round {round_ + 1}/{self.s.rounds} {name}", results[name][-1])
        return results


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def subprocess_json(*args: str) -> dict[str, Any]:
    """Run ``python -m args...`` in a fresh process and decode the JSON it prints."""
    out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    return dict(json.loads(out.stdout))


def _progress(what: str, row: Mapping[str, Any]) -> None:
    print(
        f"  {what:<36} {row['rps']:8.0f} req/s {row['cpu_us']:7.0f} µs CPU/req "
        f"p50@c1 {row['p50_us'] / 1000:6.2f} ms spans {row['spans']}"
        + (f" ERRORS {row['errors']}" if row["errors"] else ""),
        flush=True,
    )


def machine(settings: Settings) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines()
                  if ln.startswith("model name")), "unknown")  # fmt: skip
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    dirty = subprocess.run([*git, "status", "--porcelain", "libs", "services", "bench"],
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": (wrk_version.stdout + wrk_version.stderr).split(" [")[0].strip(),
        "commit": commit + (" + uncommitted changes" if dirty else ""),
        "load_average": os.getloadavg()[0],
        "settings": {k: str(v) for k, v in dataclasses.asdict(settings).items()},
    }


def _phase(title: str, run: Callable[[], Any]) -> Any:
    print(f"\n== {title}", flush=True)
    started = time.monotonic()
    result = run()
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return result


def main() -> int:
    """Run every phase, write the report, stop everything (also on Ctrl-C or an error)."""
    settings = Settings()
    settings.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up like Ctrl-C
    work = Path(tempfile.mkdtemp(prefix="cello-bench-"))
    rows = {n: r for n, r in ROWS.items() if re.search(settings.only, n)}
    results: dict[str, Any] = {
        "machine": machine(settings),
        "rows": {
            n: {
                "group": r.group,
                "what": r.what,
                "kind": r.kind,
                "env": dict(r.env),
                "traced": r.traced,
            }
            for n, r in rows.items()
        },
    }
    bench = Bench(settings, work)
    try:
        results["stack"] = _phase("the native stack: a warm start, idle memory (bench/stack.py)",
                                  lambda: subprocess_json("bench.stack"))  # fmt: skip
        results["floor"] = _phase("the SDK's own cost (bench/floor.py)",
                                  lambda: subprocess_json("bench.floor"))  # fmt: skip
        results["sql"] = _phase(
            "SQLAlchemy per query, setting by setting (bench/sql.py)",
            lambda: subprocess_json("bench.sql", str(work / "sql.db")),
        )
        targets = _phase("start every row",
                         lambda: {n: bench.start(n, r) for n, r in rows.items()})  # fmt: skip
        results["runs"] = _phase("the rounds", lambda: bench.rounds(targets))
        bench.close()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process this run started")
        return 130
    finally:
        bench.close()
    results["runtime_s"] = time.monotonic() - started
    if settings.only:  # the report compares every row with others: a subset has no report
        settings.out.mkdir(parents=True, exist_ok=True)
        partial = settings.out / "results-partial.json"
        partial.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"BENCH_ONLY run: the rows above, and {partial}; no report")
        return 0
    text = report.write(results, settings.out)
    print("\n" + text)
    print(f"wrote {settings.out}/README.md in {results['runtime_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
