"""Paths and helpers shared by the tests/deploy checks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BUILD = DEPLOY / "native" / "build.sh"


def dotenv() -> dict[str, str]:
    """deploy/.env as a dict (plain KEY=VALUE lines, # comments)."""
    values: dict[str, str] = {}
    for line in (DEPLOY / ".env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def build_tool(name: str) -> Path:
    """Build ``name`` with deploy/native/build.sh if needed; its path in the cache."""
    done = subprocess.run(
        [str(BUILD), "path", name],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/native/build.sh path {name} failed:\n{done.stderr[-3000:]}")
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.exists(), path
    return path
