"""``make bench``: what tracing and each hop cost, measured side by side in one run.

Every configuration runs as its own process(es), all started up front; then the
rounds go round-robin over the configurations, so slow drift of a noisy machine
(other jobs, CPU frequency) hits them all alike, and the report keeps medians. The
harness measures and reports; it never fails on a timing.

Phases: the stock SDK's own floor per operation (``bench/floor.py``); the one-service
echo app (plain Cello, tracing off, sampling 0 to 1.0, OTLP export to a sink in its own
process), today's and the lean fork's of commit ``e3e7f18`` side by side, and a py-spy
profile at sampling 1.0; one hop's parts one at a time (``bench/apps/component.py``: bare
handler, aiosqlite, SQLAlchemy as db uses it, httpx, three bare hops) in the same rounds
as the gateway -> users -> db chain (Cello off and on, the chain before issue 11's changes,
the FastAPI peer); time to trace and footprint of the full stack when it runs. Settings
come from ``BENCH_*`` variables (see ``Settings``); results go to ``docs/benchmarks/``
(``bench/out/`` in quick mode).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench import procs, report, stack
from bench.load import wrk
from tools.run import ServiceGroup, chain

ROOT = Path(__file__).resolve().parent.parent
OUT = "docs/benchmarks"
#: The last commit with the lean fork (its own tracer, wire encoder and exporter process).
LEAN_FORK = "e3e7f18"
#: main before the hop levers of issue 11 (pool size, bindparam statements, warm-up).
CHAIN_BEFORE = "f8ddeee"


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long and how often; ``BENCH_QUICK=1`` shrinks everything for development."""

    quick: bool = os.environ.get("BENCH_QUICK") == "1"
    duration: float = float(os.environ.get("BENCH_DURATION", 2 if quick else 5))
    latency_duration: float = float(os.environ.get("BENCH_LATENCY_DURATION", 1 if quick else 3))
    rounds: int = int(os.environ.get("BENCH_ROUNDS", 2 if quick else 5))
    chain_rounds: int = int(os.environ.get("BENCH_CHAIN_ROUNDS", 1 if quick else 3))
    connections: int = int(os.environ.get("BENCH_CONNECTIONS", 32))
    chain_connections: int = int(os.environ.get("BENCH_CHAIN_CONNECTIONS", 16))
    profile_seconds: float = float(os.environ.get("BENCH_PROFILE_SECONDS", 3 if quick else 10))
    traces: int = int(os.environ.get("BENCH_TRACES", 5 if quick else 30))
    log_level: str = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    start_stack: bool = os.environ.get("BENCH_STACK") == "1"
    stack_phase: bool = os.environ.get("BENCH_STACK") != "0"  # 0: never touch the stack
    out: Path = Path(
        os.environ.get("BENCH_OUT", ROOT / ("bench/out" if quick else "docs/benchmarks"))
    )


#: name -> (what it is, environment). The access log is off (BENCH_LOG_LEVEL) except in
#: "off+log", so the others measure tracing alone.
ECHO_CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "plain": ("bare cello.App, no wrapper (the floor)", {"BENCH_PLAIN": "1"}),
    "off": ("cello_telemetry.App, OTEL_SDK_DISABLED=true", {"OTEL_SDK_DISABLED": "true"}),
    "off+log": ("off, with the JSON access log (LOG_LEVEL=INFO)",
                {"OTEL_SDK_DISABLED": "true", "LOG_LEVEL": "INFO"}),
    "s=0": ("sampling 0.0: every request unsampled", {"OTEL_TRACES_SAMPLER_ARG": "0"}),
    "s=0.1": ("sampling 0.1", {"OTEL_TRACES_SAMPLER_ARG": "0.1"}),
    "s=1.0": ("sampling 1.0, OTLP/gRPC export to the sink", {"OTEL_TRACES_SAMPLER_ARG": "1.0"}),
    # The same app at LEAN_FORK: its cello_telemetry, checked out of git for the run.
    "lean off": (f"lean fork ({LEAN_FORK}), OTEL_SDK_DISABLED=true",
                 {"OTEL_SDK_DISABLED": "true"}),
    "lean s=0": (f"lean fork ({LEAN_FORK}), sampling 0.0", {"OTEL_TRACES_SAMPLER_ARG": "0"}),
    "lean s=1.0": (f"lean fork ({LEAN_FORK}), sampling 1.0, export from its child process",
                   {"OTEL_TRACES_SAMPLER_ARG": "1.0"}),
}  # fmt: skip

#: name -> (what it is, BENCH_COMPONENT of bench/apps/component.py, what it calls)
COMPONENTS: dict[str, tuple[str, str, str | None]] = {
    "bare": ("bare Cello async handler (the echo)", "bare", None),
    "aiosqlite": ("one SELECT on one aiosqlite connection (execute_fetchall)", "aiosqlite", None),
    "sqlalchemy": ("the same SELECT through SQLAlchemy as db does it (UserStore.get)",
                   "sqlalchemy", None),
    "httpx": ("one httpx GET to a bare handler (one AsyncClient; caller's CPU)", "httpx",
              "peer"),
    "three bare hops": ("httpx -> httpx -> SQLAlchemy: three bare apps (CPU of all three)",
                        "httpx", "hop2"),
}  # fmt: skip

CHAIN_CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "cello off": ("cello", {"OTEL_SDK_DISABLED": "true"}),
    "cello s=1.0": ("cello", {"OTEL_TRACES_SAMPLER_ARG": "1.0"}),
    # The services and library of CHAIN_BEFORE, checked out of git for the run.
    "before off": ("before", {"OTEL_SDK_DISABLED": "true"}),
    "fastapi off": ("fastapi", {"OTEL_SDK_DISABLED": "true"}),
    "fastapi s=1.0": ("fastapi", {}),
}


@dataclasses.dataclass
class Target:
    """Something under load: its URL, its processes, and where its spans are counted."""

    url: str
    pids: dict[str, int]  # component -> pid (its process tree is measured)
    services: list[str]  # service.name values in the sink
    health: list[str]  # /health URLs with span counters ([] when there are none)
    traced: bool
    connections: int = 0  # wrk connections of the throughput run; 0: the settings' default
    rusage: list[str] = dataclasses.field(default_factory=list)  # /rusage URLs, if any
    peak_rss: dict[str, float] = dataclasses.field(default_factory=dict)
    idle_rss: dict[str, float] = dataclasses.field(default_factory=dict)
    peak_threads: dict[str, float] = dataclasses.field(default_factory=dict)

    def cpu(self) -> float:
        return sum(self.cpu_by().values())

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


class Bench:
    """One run: the sink, the processes, the measurements."""

    def __init__(self, settings: Settings, work: Path) -> None:
        self.s = settings
        self.work = work
        self.processes = procs.Processes(work)
        self.groups: list[ServiceGroup] = []
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

    def sink_spans(self, services: list[str]) -> int:
        counts = procs.get_json(f"http://127.0.0.1:{self.sink_port}/")
        return sum(counts.get(name, 0) for name in services)

    def dropped(self, target: Target) -> int:
        """Spans the services say they dropped (queue full or export failed) so far."""
        total = 0
        for url in target.health:
            spans = (procs.get_json(url).get("telemetry") or {}).get("spans") or {}
            total += sum(v for k, v in spans.items() if k.startswith("dropped"))
        return total

    def settle(self, target: Target) -> int:
        """Wait until the target's spans stop arriving at the sink; return the count."""
        last, deadline = -1, time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.4)  # twice the 200 ms batch delay
            now = self.sink_spans(target.services)
            if now == last:
                break
            last = now
        return last

    def env(self, level: str | None = None) -> dict[str, str]:
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp, "LOG_LEVEL": level or self.s.log_level}

    def measure(self, target: Target, path: str, script: str | None = None) -> dict:
        """One throughput run (CPU, spans) and one latency run at one connection.

        Context switches are counted in both: at one connection every request pays its
        thread handoffs in full; under load some are shared. A script gets a fresh nonce
        per wrk run, so generated e-mail addresses never repeat.
        """
        spans0 = self.sink_spans(target.services) if target.traced else 0
        dropped0 = self.dropped(target)
        cpu0, switches0 = target.cpu_by(), target.switches()
        connections = target.connections or (
            self.s.connections if len(target.pids) == 1 else self.s.chain_connections
        )
        with procs.PeakRss(target.pids, target.peak_rss, target.peak_threads):
            load = wrk(target.url + path, self.s.duration, connections, script, _nonce())
        cpu = {name: t - cpu0[name] for name, t in target.cpu_by().items()}
        switches1 = target.switches()
        spans = self.settle(target) - spans0 if target.traced else 0
        switches2 = target.switches()
        latency = wrk(target.url + path, self.s.latency_duration, 1, script, _nonce())
        switches3 = target.switches()
        n, n1 = max(1, load.requests), max(1, latency.requests)
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
            "voluntary_cs_c1": (switches3[0] - switches2[0]) / n1,
            "involuntary_cs_c1": (switches3[1] - switches2[1]) / n1,
            "spans": spans,
            "dropped": self.dropped(target) - dropped0,
            "errors": load.errors + load.non2xx + latency.errors + latency.non2xx,
        }

    # -- phase 1: one service -------------------------------------------------------

    def start_echo(self, lean: Path | None) -> dict[str, Target]:
        """Every echo configuration; the lean fork's only when its code is at ``lean``."""
        targets = {}
        for name, (_, extra) in ECHO_CONFIGS.items():
            script, env = "bench/apps/echo.py", {}
            if name.startswith("lean"):
                if lean is None:
                    continue
                script, env = str(lean / script), {"PYTHONPATH": str(lean / "src")}
            port = procs.free_port()
            env |= {**self.env(), "PORT": str(port), "OTEL_SERVICE_NAME": f"echo {name}", **extra}
            url = f"http://127.0.0.1:{port}"
            pid = self.processes.start(f"echo-{name}", [script], env, url + "/health")
            traced = "s=" in name
            health = [url + "/health"] if traced else []
            targets[name] = Target(url, {"echo": pid}, [f"echo {name}"], health, traced)
            targets[name].idle_rss["echo"] = procs.rss_mib(pid)
        return targets

    def echo_rounds(self, targets: dict[str, Target]) -> dict[str, list[dict]]:
        for target in targets.values():  # warm-up: imports, caches, the exporter
            wrk(target.url + "/", 1, self.s.connections)
        results: dict[str, list[dict]] = {name: [] for name in targets}
        for round_ in range(self.s.rounds):
            for name, target in targets.items():
                results[name].append(self.measure(target, "/"))
                _progress(f"echo round {round_ + 1}/{self.s.rounds} {name}", results[name][-1])
        return results

    def profile(self, target: Target) -> Path | None:
        """py-spy of ``target`` under load (only threads holding the GIL; children too)."""
        out = self.s.out / "profile-echo-s1.0.txt"
        load = threading.Thread(
            target=wrk, args=(target.url + "/", self.s.profile_seconds + 2, self.s.connections)
        )
        load.start()
        try:
            time.sleep(1)
            subprocess.run(
                [str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                 str(target.pids["echo"]), "-d", str(round(self.s.profile_seconds)), "-r", "200",
                 "--gil", "--subprocesses", "--threads", "-f", "raw", "-o", str(out)],
                check=True, capture_output=True, timeout=self.s.profile_seconds + 30,
            )  # fmt: skip
            return out
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"profile skipped: {exc}")
            return None
        finally:
            load.join()

    # -- phase 2: the chain ------------------------------------------------------------

    def start_components(self) -> dict[str, Target]:
        """The parts of one hop, each its own bare app (``bench/apps/component.py``)."""
        database = self.work / "component.db"

        def start(name: str, component: str, downstream: str | None = None) -> tuple[str, int]:
            port = procs.free_port()
            env = {"PORT": str(port), "BENCH_COMPONENT": component,
                   "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                   "DOWNSTREAM_URL": downstream or ""}  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            pid = self.processes.start(f"component-{name}", ["bench/apps/component.py"], env,
                                       url + "/health")  # fmt: skip
            return url, pid

        started = {"peer": start("peer", "bare")}
        started["hop3"] = start("hop3", "sqlalchemy")
        started["hop2"] = start("hop2", "httpx", started["hop3"][0])
        targets = {}
        for name, (_, component, calls) in COMPONENTS.items():
            processes = {name: start(name, component, started[calls][0] if calls else None)}
            if name == "three bare hops":
                processes |= {hop: started[hop] for hop in ("hop2", "hop3")}
            targets[name] = Target(
                processes[name][0], {hop: pid for hop, (_, pid) in processes.items()}, [], [],
                traced=False, connections=self.s.chain_connections,
                rusage=[f"{url}/rusage" for url, _ in processes.values()],
            )  # fmt: skip
            pids = targets[name].pids
            targets[name].idle_rss = {hop: procs.rss_mib(pid) for hop, pid in pids.items()}
        return targets

    def start_chain(self, name: str, before: Path | None) -> Target | None:
        """One chain configuration; ``before`` is CHAIN_BEFORE's tree (None: skip it)."""
        kind, extra = CHAIN_CONFIGS[name]
        db_url = f"sqlite+aiosqlite:///{self.work}/{name.replace(' ', '-')}.db"
        ports = {role: procs.free_port() for role in ("gateway", "users", "db")}
        traced = "OTEL_SDK_DISABLED" not in extra
        env = {**self.env(), "DATABASE_URL": db_url, **extra}
        if kind == "before":
            if before is None:
                return None
            env["PYTHONPATH"] = os.pathsep.join(str(before / p) for p in _BEFORE_PATH)
        if kind in ("cello", "before"):
            group = ServiceGroup(
                chain(ports["gateway"], ports["users"], ports["db"]), env, self.work / name
            )
            self.groups.append(group)
            try:
                group.start()
            except RuntimeError as exc:  # a shared machine: one more try, then give up
                print(f"{name}: {exc}; starting it once more")
                group.start()
            services = ["api-gateway", "user-service", "db-proxy"]
        else:
            downstream = {"gateway": ports["users"], "users": ports["db"], "db": 0}
            for role in ("db", "users", "gateway"):
                self.processes.start(
                    f"{name}-{role}", ["-m", "bench.peer.chain"],
                    {**env, "BENCH_ROLE": role, "PORT": str(ports[role]),
                     "OTEL_SERVICE_NAME": f"peer-{role}",
                     "DOWNSTREAM_URL": f"http://127.0.0.1:{downstream[role]}"},
                    f"http://127.0.0.1:{ports[role]}/health",
                )  # fmt: skip
            services = ["peer-gateway", "peer-users", "peer-db"]
        pids = {role: procs.pid_on_port(port) for role, port in ports.items()}
        health = [f"http://127.0.0.1:{p}/health" for p in ports.values()] if kind == "cello" else []
        target = Target(
            f"http://127.0.0.1:{ports['gateway']}",
            {role: pid for role, pid in pids.items() if pid is not None},
            services if traced else [],
            health if traced else [],
            traced,
        )
        target.idle_rss = {role: procs.rss_mib(pid) for role, pid in target.pids.items()}
        return target

    def start_chains(self, before: Path | None) -> dict[str, Target]:
        targets = {name: self.start_chain(name, before) for name in CHAIN_CONFIGS}
        return {name: target for name, target in targets.items() if target is not None}

    def hop_rounds(
        self, components: dict[str, Target], chains: dict[str, Target]
    ) -> dict[str, dict[str, list[dict]]]:
        """Round-robin over the components (``GET /``) and the chains (read and write)."""
        user = {}
        for target in components.values():
            wrk(target.url + "/", 1, self.s.chain_connections)
        for name, target in chains.items():
            body = json.dumps({"name": "Ada", "email": "ada@example.com"}).encode()
            user[name] = procs.get_json(target.url + "/api/users", data=body)["id"]
            wrk(target.url + f"/api/users/{user[name]}", 1, self.s.chain_connections)
        results: dict[str, dict[str, list[dict]]] = {"components": {}, "read": {}, "write": {}}
        rounds = self.s.chain_rounds
        for round_ in range(rounds):
            for name, target in components.items():
                row = self.measure(target, "/")
                results["components"].setdefault(name, []).append(row)
                _progress(f"hop round {round_ + 1}/{rounds} {name}", row)
            for name, target in chains.items():
                read = self.measure(target, f"/api/users/{user[name]}")
                write = self.measure(target, "/api/users", "create_user.lua")
                results["read"].setdefault(name, []).append(read)
                results["write"].setdefault(name, []).append(write)
                _progress(f"hop round {round_ + 1}/{rounds} {name} read", read)
                _progress(f"hop round {round_ + 1}/{rounds} {name} write", write)
        return results


#: CHAIN_BEFORE's import path: the library and the three services, from its tree.
_BEFORE_PATH = ("libs/cello-telemetry/src", "services/db/src", "services/users/src",
                "services/gateway/src")  # fmt: skip


def checkout(commit: str, paths: list[str], into: Path) -> Path:
    """``paths`` of ``commit`` from git into ``into``, for this run only.

    Raises ``LookupError`` when the clone lacks that history (shallow, or no ``.git``).
    """
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, *paths],
                             capture_output=True, check=False)  # fmt: skip
    if archive.returncode != 0:
        error = archive.stderr.decode().strip()
        raise LookupError(f"commit {commit} is not in this clone's history ({error})")
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def checkouts(work: Path, skipped: dict[str, str]) -> tuple[Path | None, Path | None]:
    """The lean fork's tree and CHAIN_BEFORE's; None (and why, in ``skipped``) if missing."""
    trees: list[Path | None] = []
    for what, commit, paths in (("lean fork", LEAN_FORK, ["src", "bench/apps/echo.py"]),
                                ("chain before", CHAIN_BEFORE, ["libs", "services"])):  # fmt: skip
        try:
            trees.append(checkout(commit, paths, work / commit))
        except LookupError as exc:
            trees.append(None)
            skipped[what] = str(exc)
            print(f"{what}: skipped: {exc}")
    return trees[0], trees[1]


def floor() -> dict[str, float]:
    """The stock SDK's own cost per operation (``bench/floor.py``), in a fresh process."""
    out = subprocess.run([sys.executable, "-m", "bench.floor"], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    return json.loads(out.stdout)


def _nonce() -> str:
    return str(time.time_ns())


def _progress(what: str, row: Mapping[str, Any]) -> None:
    print(
        f"  {what:<40} {row['rps']:8.0f} req/s {row['cpu_us']:7.1f} µs CPU/req "
        f"p99@c1 {row['p99_us'] / 1000:6.2f} ms spans {row['spans']}"
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
    dirty = subprocess.run([*git, "status", "--porcelain", "libs", "services"], capture_output=True,
                           text=True, check=False).stdout.strip()  # fmt: skip
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("\n")[0].strip(),
        "commit": commit + (" + uncommitted changes in libs/ or services/" if dirty else ""),
        "load_average": os.getloadavg()[0],
        "settings": {k: str(v) for k, v in dataclasses.asdict(settings).items()},
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _phase(title: str, run: Callable[[], Any]) -> Any:
    print(f"\n== {title}", flush=True)
    started = time.monotonic()
    result = run()
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return result


def _stack(settings: Settings) -> dict[str, Any]:
    """The stack phase; a stack that fails to start is reported, not fatal to the run."""
    try:
        return stack.measure(settings.start_stack, settings.traces, settings.duration)
    except (OSError, subprocess.SubprocessError, RuntimeError, ValueError) as exc:
        print(f"stack phase skipped: {exc}")
        return {"skipped": f"the stack failed: {exc}"}


def main() -> int:
    """Run every phase, write the report, stop everything (also on Ctrl-C or an error)."""
    settings = Settings()
    settings.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up like Ctrl-C
    results: dict[str, Any] = {"machine": machine(settings)}
    work = Path(tempfile.mkdtemp(prefix="cello-bench-"))
    results["commits"] = {"lean fork": LEAN_FORK, "chain before": CHAIN_BEFORE}
    results["skipped"] = {}
    lean, before = checkouts(work, results["skipped"])
    bench = Bench(settings, work)
    try:
        results["floor"] = _phase("the stock SDK's floor (bench/floor.py)", floor)
        echo = _phase("start the echo configurations", lambda: bench.start_echo(lean))
        results["echo"] = _phase("one service: echo", lambda: bench.echo_rounds(echo))
        results["echo_configs"] = {name: desc for name, (desc, _) in ECHO_CONFIGS.items()}
        profile = _phase("profile: echo at sampling 1.0", lambda: bench.profile(echo["s=1.0"]))
        results["profile"] = report.summarise_profile(profile) if profile else None
        results["footprint"] = {f"echo {n}": t for n, t in echo.items()}
        bench.close()  # the echo processes: free the CPU for the chain
        bench = Bench(settings, work)
        components = _phase("start the components", bench.start_components)
        chains = _phase("start the chains", lambda: bench.start_chains(before))
        hops = _phase("the components and the chain", lambda: bench.hop_rounds(components, chains))
        results["components"] = hops.pop("components")
        results["component_configs"] = {name: desc for name, (desc, *_) in COMPONENTS.items()}
        results["chain"] = hops
        results["threads"] = {name: t.peak_threads for name, t in {**components, **chains}.items()}
        results["footprint"].update({f"chain {n}": t for n, t in chains.items()})
        bench.close()
        results["stack"] = (
            _phase("full stack: time to trace, footprint", lambda: _stack(settings))
            if settings.stack_phase
            else {"skipped": "BENCH_STACK=0"}
        )
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process this run started")
        return 130
    finally:
        bench.close()
    results["footprint"] = {
        name: {"idle": t.idle_rss, "peak": t.peak_rss} for name, t in results["footprint"].items()
    }
    results["runtime_s"] = time.monotonic() - started
    text = report.write(results, settings.out)
    print("\n" + text)
    print(f"wrote {settings.out}/README.md in {results['runtime_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
