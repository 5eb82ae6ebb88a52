"""The full stack (``make up``): time to trace in Jaeger and Zipkin, and its memory.

Runs only when the stack is up (gateway :8000, Jaeger :16686, Zipkin :9411), or when
``BENCH_STACK=1`` lets it start the stack with ``deploy/stack.sh up`` (and stop it after).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import procs
from bench.load import wrk
from tools.run import port_in_use

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = "http://127.0.0.1:8000"
JAEGER = "http://127.0.0.1:16686/api/traces/{}"
ZIPKIN = "http://127.0.0.1:9411/api/v2/trace/{}"
EXPECTED_SPANS = 7  # gateway SERVER+CLIENT, users SERVER+CLIENT, db SERVER, connect, SELECT
#: component -> the port that finds it when .run/<name>.pid does not
COMPONENTS = {"gateway": 8000, "users": 8001, "db": 8002, "otelcol": 4317, "jaeger": 16686,
              "zipkin": 9411}  # fmt: skip


def running() -> bool:
    """Whether the gateway, Jaeger and Zipkin all listen on their usual ports."""
    return all(port_in_use(port) for port in (8000, 16686, 9411))


def pids() -> dict[str, int]:
    """The stack's processes: from ``.run/*.pid`` (native mode), else by listening port."""
    found = {}
    for name, port in COMPONENTS.items():
        pid_file = ROOT / ".run" / f"{name}.pid"
        pid = None
        if pid_file.exists():
            text = pid_file.read_text().strip()
            pid = int(text) if text.isdigit() and Path(f"/proc/{text}").exists() else None
        found[name] = pid or procs.pid_on_port(port)
    return {name: pid for name, pid in found.items() if pid is not None}


def _spans(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            data = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError):
        return 0
    if isinstance(data, dict):  # Jaeger: {"data": [{"spans": [...]}]}
        return sum(len(t.get("spans", [])) for t in data.get("data") or [])
    return len(data)  # Zipkin: [span, ...]


def _wait_complete(url: str, since: float, out: dict[str, float], key: str) -> None:
    deadline = since + 15
    while time.monotonic() < deadline:
        if _spans(url) >= EXPECTED_SPANS:
            out[key] = time.monotonic() - since
            return
        time.sleep(0.01)


def time_to_trace(count: int) -> dict[str, Any]:
    """GET one user ``count`` times; time from each response to its complete trace."""
    email = f"ttt-{time.time_ns()}@example.com"
    body = json.dumps({"name": "Trace Timer", "email": email}).encode()
    user = procs.get_json(f"{GATEWAY}/api/users", data=body)["id"]
    times: dict[str, list[float]] = {"jaeger": [], "zipkin": []}
    missing = {"jaeger": 0, "zipkin": 0}
    for _ in range(count):
        with urllib.request.urlopen(f"{GATEWAY}/api/users/{user}", timeout=5) as answer:
            answer.read()
            traceparent = answer.headers.get("traceparent", "")
        arrived = time.monotonic()
        parts = traceparent.split("-")
        # The sampled bit of the trace flags (W3C Level 2 may set "random" beside it: 03).
        if len(parts) != 4 or not int(parts[3], 16) & 0x01:
            return {"skipped": f"the stack's gateway did not sample (traceparent {traceparent!r})"}
        done: dict[str, float] = {}
        # One poller per backend, so neither waits behind the other's HTTP calls.
        pollers = [
            threading.Thread(target=_wait_complete, args=(url.format(parts[1]), arrived, done, k))
            for k, url in (("jaeger", JAEGER), ("zipkin", ZIPKIN))
        ]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()
        for backend in times:
            if backend in done:
                times[backend].append(done[backend])
            else:
                missing[backend] += 1
    return {
        backend: {
            "p50_ms": statistics.median(values) * 1000 if values else None,
            "p95_ms": _p95(values) * 1000 if values else None,
            "traces": len(values),
            "incomplete_after_15s": missing[backend],
        }
        for backend, values in times.items()
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(start: bool, traces: int, duration: float) -> dict[str, Any]:
    """Time to trace and RSS (idle, then peak under a GET load), or why it was skipped."""
    started = False
    if not running() and start:
        subprocess.run([str(ROOT / "deploy/stack.sh"), "up"], check=True)
        started = True
    try:
        if not running():
            return {"skipped": "stack not running (start it with make up, or set BENCH_STACK=1)"}
        components = pids()
        idle = {name: procs.rss_mib(pid) for name, pid in components.items()}
        result: dict[str, Any] = {"time_to_trace": time_to_trace(traces)}
        peak: dict[str, float] = {}
        users = procs.get_json(f"{GATEWAY}/api/users?limit=1")["items"]
        with procs.PeakRss(components, peak):
            load = wrk(f"{GATEWAY}/api/users/{users[0]['id']}", duration, 16)
        result.update(idle_rss=idle, peak_rss=peak, load_rps=load.rps, started=started)
        return result
    finally:
        if started:
            subprocess.run([str(ROOT / "deploy/stack.sh"), "down"], check=False)
