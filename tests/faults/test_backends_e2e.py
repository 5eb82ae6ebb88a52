"""Faults on the native stack's telemetry path: the collector, Jaeger or Zipkin stops
and comes back while the services keep serving.

A component is stopped through its pid in ``.run/`` and started again with exactly
the command line, environment and working directory it had (read from ``/proc``),
as ``deploy/stack.sh`` started it, so ``deploy/stack.sh down`` still finds it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from faulttools import RESTARTED, Figures, long_only

from support.backends import jaeger_spans, wait_for_trace, zipkin_spans
from support.traces import poll_until, trace_id_of

pytestmark = pytest.mark.e2e

GATEWAY = "http://127.0.0.1:8000"
HEALTH = {
    "otelcol": "http://127.0.0.1:13133/",
    "jaeger": "http://127.0.0.1:14133/status",
    "zipkin": "http://127.0.0.1:9411/health",
}


class Component:
    """One process of the native stack, stopped and started again as stack.sh runs it."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.name = name
        self.pid_file = run_dir / f"{name}.pid"
        self.log = run_dir / f"{name}.log"
        self.pid = int(self.pid_file.read_text())
        proc = Path(f"/proc/{self.pid}")
        self.argv = proc.joinpath("cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        env = proc.joinpath("environ").read_bytes().rstrip(b"\0").split(b"\0")
        self.env = dict(item.split(b"=", 1) for item in env if b"=" in item)
        self.cwd = os.readlink(proc / "cwd")
        self._child: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        # stack.sh starts each component with setsid: its pid leads its process group.
        os.killpg(self.pid, signal.SIGTERM)
        poll_until(lambda: not Path(f"/proc/{self.pid}").exists(), bool, timeout=20)
        if self._child is not None:
            self._child.wait(5)

    def start(self, timeout: float = 120) -> None:
        with self.log.open("ab") as log:
            log.write(f"=== restarted by {__name__}\n".encode())
            self._child = RESTARTED.add(
                subprocess.Popen(
                    self.argv,
                    env=self.env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
        self.pid = self._child.pid
        self.pid_file.write_text(f"{self.pid}\n")
        poll_until(
            lambda: httpx.get(HEALTH[self.name], timeout=2).status_code == 200,
            bool,
            timeout=timeout,
            interval=0.5,
            what=f"{self.name} healthy again",
        )


@pytest.fixture
def component(native_stack: Path, request: pytest.FixtureRequest) -> Iterator[Component]:
    """The component named by the test's ``name`` parameter; always left running."""
    part = Component(native_stack, request.param)
    yield part
    if not Path(f"/proc/{part.pid}").exists():
        part.start()


def _read(n: int = 1) -> list[str]:
    """``n`` requests through the stack's gateway (all must succeed); their trace ids."""
    created = httpx.post(
        f"{GATEWAY}/api/users",
        json={"name": "Ada", "email": f"e2e-fault-{uuid.uuid4().hex[:12]}@example.com"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    ids = [trace_id_of(created.headers["traceparent"])]
    for _ in range(n - 1):
        answer = httpx.get(f"{GATEWAY}{created.headers['location']}", timeout=10)
        assert answer.status_code == 200
        ids.append(trace_id_of(answer.headers["traceparent"]))
    return ids


@pytest.mark.parametrize("component", ["otelcol"], indirect=True)
def test_collector_stopped_and_back(component: Component, figures: Figures) -> None:
    component.stop()
    started = time.monotonic()
    _read(20)  # all succeed while spans have nowhere to go

    def dropped() -> int:
        _read(1)
        spans = httpx.get(f"{GATEWAY}/health", timeout=5).json()["telemetry"]["spans"]
        return int(spans["dropped_export_failed"] + spans["dropped_queue_full"])

    # Lost spans show on /health once an export has given up (after its 3 s timeout).
    poll_until(dropped, lambda n: n > 0, timeout=30, what="dropped spans on /health")
    down_for = time.monotonic() - started
    component.start()
    back = time.monotonic()
    # Export resumes by itself: a request sent now is complete in both backends.
    (trace_id,) = _read(1)
    wait_for_trace(jaeger_spans, trace_id, 7, timeout=60)
    wait_for_trace(zipkin_spans, trace_id, 7, timeout=60)
    figures(
        f"collector down {down_for:.1f} s: every request answered, drops counted on /health; "
        f"a trace sent after "
        f"it came back complete in Jaeger and Zipkin {time.monotonic() - back:.1f} s later"
    )


@pytest.mark.parametrize(
    "component", ["jaeger", pytest.param("zipkin", marks=long_only)], indirect=True
)
def test_one_backend_down_the_other_gets_everything_and_it_catches_up(
    component: Component, figures: Figures
) -> None:
    other, down = (
        (zipkin_spans, jaeger_spans) if component.name == "jaeger" else (jaeger_spans, zipkin_spans)
    )
    component.stop()
    trace_ids = _read(10)
    for trace_id in trace_ids:
        wait_for_trace(other, trace_id, 7, timeout=60)
    outage = time.monotonic()
    component.start()
    restarted = time.monotonic() - outage
    # The collector kept the batches for the dead backend in its retry queue.
    for trace_id in trace_ids:
        wait_for_trace(down, trace_id, 7, timeout=120)
    figures(
        f"{component.name} down: 10 traces complete in the other backend; {component.name} "
        f"back after {restarted:.1f} s and had all 10 "
        f"{time.monotonic() - outage - restarted:.1f} s later"
    )
