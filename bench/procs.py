"""Processes for the benchmark: free ports, start/stop, and CPU and switches from /proc."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from tools.ports import free_port as free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")


def get_json(url: str, timeout: float = 2.0, data: bytes | None = None) -> Any:
    """GET (or POST ``data`` as JSON) and decode the JSON answer."""
    headers = {"content-type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a launcher script may own the real process)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def pid_on_port(port: int) -> int | None:
    """The pid listening on TCP ``port``, from ``ss -ltnp``."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"pid=(\d+)", out)
    return int(match.group(1)) if match else None


class Processes:
    """Processes started by the benchmark; :meth:`stop_all` ends every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, args: Iterable[str], env: Mapping[str, str], health_url: str) -> int:
        """Start ``python args...`` and wait until ``health_url`` answers; return its pid."""
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop_all
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, *args], env={**os.environ, **env}, stdout=log, stderr=log
        )
        self._procs.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {log.name}")
            try:
                get_json(health_url, timeout=1)
                return proc.pid
            except (OSError, ValueError):
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer {health_url} within 30 s; see {log.name}")

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM everything, SIGKILL what is still there after ``timeout``."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


def switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of ``pid``'s live threads so far.

    ``/proc/PID/status`` counts one thread only, so this sums ``/proc/PID/task/*``; a
    thread that has exited takes its count with it (the apps in ``bench/apps/`` answer
    ``/rusage`` with the kernel's whole-process total instead).
    """
    voluntary = involuntary = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except OSError:
            continue
        voluntary += int(fields["voluntary_ctxt_switches"])
        involuntary += int(fields["nonvoluntary_ctxt_switches"])
    return voluntary, involuntary
