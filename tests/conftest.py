"""Suite-wide set-up: each test directory is one level of the test pyramid.

A test gets the marker of the directory it lives in (``tests/unit`` -> ``unit``),
so ``pytest -m unit`` selects exactly that level without per-file boilerplate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_LEVELS = {"unit", "integration", "e2e", "faults"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_root = Path(__file__).parent
    for item in items:
        level = Path(item.path).relative_to(tests_root).parts[0]
        if level in _LEVELS:
            item.add_marker(getattr(pytest.mark, level))
