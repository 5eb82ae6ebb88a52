"""services/Dockerfile, the one image recipe, followed without Docker.

The build stage's COPY lines are the only files the image gets, and its ``uv sync``
lines install from them. Replaying exactly those steps in an empty directory, offline
from uv's cache, shows the recipe installs the service it is asked for, and the
library, and no other service.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploytools import REPO
from uv import find_uv_bin

pytestmark = pytest.mark.integration

DOCKERFILE = REPO / "services" / "Dockerfile"
SERVICES = ("gateway", "users", "db")


def build_stage(service: str) -> list[list[str]]:
    """The instructions of the first stage, continuation lines joined, ``SERVICE`` set."""
    text = DOCKERFILE.read_text().replace("\\\n", " ").replace("${SERVICE}", service)
    stages: list[list[list[str]]] = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append(words)
    return stages[0]


def replay(service: str, root: Path) -> Path:
    """Follow the build stage in ``root`` (its ``/src``); return the environment's Python."""
    venv = root / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
    }
    steps = build_stage(service)
    assert ["WORKDIR", "/src"] in steps
    for words in steps:
        if words[0] == "COPY":
            *sources, target = words[1:]
            for source in sources:
                destination = root / target / (Path(source).name if target.endswith("/") else "")
                if (REPO / source).is_dir():
                    skip = shutil.ignore_patterns("__pycache__")
                    shutil.copytree(REPO / source, root / target, dirs_exist_ok=True, ignore=skip)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO / source, destination)
        elif words[:3] == ["RUN", "uv", "sync"]:
            command = [find_uv_bin(), *words[2:]]
            command[command.index("--python") + 1] = sys.executable
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
    return venv / "bin" / "python"


@pytest.mark.parametrize("service", SERVICES)
def test_the_recipe_installs_the_service_and_the_library_only(service: str, tmp_path: Path) -> None:
    python = replay(service, tmp_path)
    others = [other for other in SERVICES if other != service]
    probe = (
        f"import importlib.util, {service}, cello_runner, cello_telemetry;"
        f"print(*[n for n in {[*others, 'tools']!r} if importlib.util.find_spec(n)])"
    )
    done = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONSAFEPATH": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_image_runs_the_service_it_was_built_for() -> None:
    text = DOCKERFILE.read_text()
    assert "SERVICE=${SERVICE}" in text  # the build argument, kept for the command
    assert 'CMD ["sh", "-c", "exec python -m \\"$SERVICE\\""]' in text
