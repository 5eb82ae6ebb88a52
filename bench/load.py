"""wrk on loopback, with the results read back as numbers (µs, requests)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WRK_DIR = Path(__file__).parent / "wrk"


@dataclass(frozen=True, slots=True)
class Load:
    """What one wrk run measured."""

    requests: int
    seconds: float
    errors: int  # socket errors and timeouts
    non2xx: int
    p50_us: int
    p99_us: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk(url: str, seconds: float, connections: int, script: str | None = None, *args: str) -> Load:
    """Run wrk (one thread: the other core is the server's) and parse its JSON line.

    ``script`` names a Lua file in ``bench/wrk/``; the reporting ``done()`` is appended.
    """
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk; bench/run.sh does it)")
    lua = (WRK_DIR / script).read_text() if script else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as combined:
        combined.write(lua + "\n" + (WRK_DIR / "report.lua").read_text())
        combined.flush()
        command = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                   "--timeout", "5s", "-s", combined.name, url]  # fmt: skip
        if args:
            command += ["--", *args]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["errors"],
        non2xx=data["non2xx"],
        p50_us=data["p50_us"],
        p99_us=data["p99_us"],
    )
