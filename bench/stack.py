"""The native stack as ``make up`` starts it: how long a warm start takes, and how much
memory the whole stack holds once idle. Prints one JSON object.

Warm means built: the native tools are in the cache (``deploy/native/build.sh check``
answers), so the start is the stack's own, not a build. The stack is started with
``deploy/stack.sh up``, left idle for ``BENCH_STACK_IDLE`` seconds (30), read with
``deploy/stack.sh status`` (each component's resident memory) and stopped again. A stack
that is already running is left alone and not measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "deploy" / "stack.sh"
BUILD = ROOT / "deploy" / "native" / "build.sh"


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STACK": "native"}
    return subprocess.run(
        [*args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def status() -> dict[str, int | None]:
    """Each component's resident MiB from ``deploy/stack.sh status`` (None: not running)."""
    rss: dict[str, int | None] = {}
    for line in _run(str(STACK), "status").stdout.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[2] in ("running", "stopped", "foreign"):
            rss[fields[0]] = int(fields[4]) if fields[4].isdigit() else None
    return rss


def measure(idle: float) -> dict[str, Any]:
    if any(value is not None for value in status().values()):
        return {"skipped": "a stack is already running (make down first)"}
    if _run(str(BUILD), "check").returncode != 0:
        return {"skipped": "the native tools are not built (deploy/native/build.sh all)"}
    started = time.monotonic()
    up = _run(str(STACK), "up", timeout=600)
    up_s = time.monotonic() - started
    try:
        if up.returncode != 0:
            return {"skipped": f"deploy/stack.sh up failed: {up.stderr.strip()[-300:]}"}
        time.sleep(idle)
        rss = {name: mib for name, mib in status().items() if mib is not None}
    finally:
        _run(str(STACK), "down")
    return {"up_s": up_s, "idle_s": idle, "rss_mib": rss, "total_mib": sum(rss.values())}


if __name__ == "__main__":
    print(json.dumps(measure(float(os.environ.get("BENCH_STACK_IDLE", 30)))))
