"""Fixtures for the deploy/ checks: the real tools, built once per machine.

``deploy/native/build.sh path NAME`` builds a tool into the per-machine cache if it
is not there yet (minutes, the first time only) and prints its path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from deploytools import build_tool


@pytest.fixture(scope="session")
def tool() -> Callable[[str], Path]:
    """``tool("otelcol")`` -> path of the cached binary, built on first use."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = build_tool(name)
        return cache[name]

    return get
