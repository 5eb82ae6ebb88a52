"""``make bench``: what tracing costs, measured side by side in one run.

Every configuration runs as its own process(es), all started up front; then the
rounds go round-robin over the configurations, so slow drift of a noisy machine
(other jobs, CPU frequency) hits them all alike, and the report keeps medians. The
harness measures and reports; it never fails on a timing.

Phases: the one-service echo app (plain Cello, tracing off, sampling 0 to 1.0, OTLP
export to a sink in its own process) and a py-spy profile of it at sampling 1.0; the
gateway -> users -> db chain, Cello and the FastAPI peer, off and on; time to trace and
footprint of the full stack when it runs. Settings come from ``BENCH_*`` variables
(see ``Settings``); results go to ``docs/benchmarks/`` (``bench/out/`` in quick mode).
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
    "s=0.01": ("sampling 0.01", {"OTEL_TRACES_SAMPLER_ARG": "0.01"}),
    "s=0.1": ("sampling 0.1", {"OTEL_TRACES_SAMPLER_ARG": "0.1"}),
    "s=1.0": ("sampling 1.0, OTLP/gRPC export to the sink", {"OTEL_TRACES_SAMPLER_ARG": "1.0"}),
}  # fmt: skip

CHAIN_CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "cello off": ("cello", {"OTEL_SDK_DISABLED": "true"}),
    "cello s=1.0": ("cello", {"OTEL_TRACES_SAMPLER_ARG": "1.0"}),
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
    peak_rss: dict[str, float] = dataclasses.field(default_factory=dict)
    idle_rss: dict[str, float] = dataclasses.field(default_factory=dict)

    def cpu(self) -> float:
        return sum(procs.cpu_seconds(p) for pid in self.pids.values() for p in procs.tree(pid))


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

        A script gets a fresh nonce per wrk run, so generated e-mail addresses never repeat.
        """
        spans0 = self.sink_spans(target.services) if target.traced else 0
        dropped0 = self.dropped(target)
        cpu0 = target.cpu()
        connections = self.s.connections if len(target.pids) == 1 else self.s.chain_connections
        with procs.PeakRss(target.pids, target.peak_rss):
            load = wrk(target.url + path, self.s.duration, connections, script, _nonce())
        cpu = target.cpu() - cpu0
        spans = self.settle(target) - spans0 if target.traced else 0
        latency = wrk(target.url + path, self.s.latency_duration, 1, script, _nonce())
        return {
            "rps": load.rps,
            "requests": load.requests,
            "cpu_us": cpu * 1e6 / max(1, load.requests),
            "p50_us": latency.p50_us,
            "p99_us": latency.p99_us,
            "load_p99_us": load.p99_us,
            "spans": spans,
            "dropped": self.dropped(target) - dropped0,
            "errors": load.errors + load.non2xx + latency.errors + latency.non2xx,
        }

    # -- phase 1: one service -------------------------------------------------------

    def start_echo(self) -> dict[str, Target]:
        targets = {}
        for name, (_, extra) in ECHO_CONFIGS.items():
            port = procs.free_port()
            env = {**self.env(), "PORT": str(port), "OTEL_SERVICE_NAME": f"echo {name}", **extra}
            url = f"http://127.0.0.1:{port}"
            pid = self.processes.start(f"echo-{name}", ["bench/apps/echo.py"], env, url + "/health")
            traced = name.startswith("s=")
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

    def start_chain(self, name: str) -> Target:
        kind, extra = CHAIN_CONFIGS[name]
        db_url = f"sqlite+aiosqlite:///{self.work}/{name.replace(' ', '-')}.db"
        ports = {role: procs.free_port() for role in ("gateway", "users", "db")}
        traced = "OTEL_SDK_DISABLED" not in extra
        env = {**self.env(), "DATABASE_URL": db_url, **extra}
        if kind == "cello":
            group = ServiceGroup(
                chain(ports["gateway"], ports["users"], ports["db"]), env, self.work / name
            )
            self.groups.append(group)
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

    def start_chains(self) -> dict[str, Target]:
        return {name: self.start_chain(name) for name in CHAIN_CONFIGS}

    def chain_rounds(self, targets: dict[str, Target]) -> dict[str, dict[str, list[dict]]]:
        user = {}
        for name, target in targets.items():
            body = json.dumps({"name": "Ada", "email": "ada@example.com"}).encode()
            user[name] = procs.get_json(target.url + "/api/users", data=body)["id"]
            wrk(target.url + f"/api/users/{user[name]}", 1, self.s.chain_connections)
        results: dict[str, dict[str, list[dict]]] = {"read": {}, "write": {}}
        for round_ in range(self.s.chain_rounds):
            for name, target in targets.items():
                read = self.measure(target, f"/api/users/{user[name]}")
                write = self.measure(target, "/api/users", "create_user.lua")
                results["read"].setdefault(name, []).append(read)
                results["write"].setdefault(name, []).append(write)
                _progress(f"chain round {round_ + 1}/{self.s.chain_rounds} {name} read", read)
                _progress(f"chain round {round_ + 1}/{self.s.chain_rounds} {name} write", write)
        return results


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


def main() -> int:
    """Run every phase, write the report, stop everything (also on Ctrl-C or an error)."""
    settings = Settings()
    settings.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up like Ctrl-C
    results: dict[str, Any] = {"machine": machine(settings)}
    work = Path(tempfile.mkdtemp(prefix="cello-bench-"))
    bench = Bench(settings, work)
    try:
        echo = _phase("start the echo configurations", bench.start_echo)
        results["echo"] = _phase("one service: echo", lambda: bench.echo_rounds(echo))
        results["echo_configs"] = {name: desc for name, (desc, _) in ECHO_CONFIGS.items()}
        profile = _phase("profile: echo at sampling 1.0", lambda: bench.profile(echo["s=1.0"]))
        results["profile"] = report.summarise_profile(profile) if profile else None
        results["footprint"] = {f"echo {n}": t for n, t in echo.items()}
        bench.close()  # the echo processes: free the CPU for the chain
        bench = Bench(settings, work)
        chains = _phase(
            "start the chains", lambda: {n: bench.start_chain(n) for n in CHAIN_CONFIGS}
        )
        results["chain"] = _phase("the chain", lambda: bench.chain_rounds(chains))
        results["footprint"].update({f"chain {n}": t for n, t in chains.items()})
        bench.close()
        results["stack"] = _phase(
            "full stack: time to trace, footprint",
            lambda: stack.measure(settings.start_stack, settings.traces, settings.duration),
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
