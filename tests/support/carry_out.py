"""Copy a service's folder and the libraries out of the repository, and install them alone.

This is what someone taking one service does on their own machine: ``services/<name>/``
next to the ``libs/`` it builds on in a directory of their own, all installed (not
editable) into a fresh virtual environment with exactly the versions of ``uv.lock``.
Nothing else of the repository is copied, so an import of another service, of ``tools``
or of the tests fails there.

The locked versions travel as a ``pylock.toml`` (PEP 751) exported from ``uv.lock``: it
names each wheel by URL and hash, so installing it resolves nothing. That matters on a
fresh machine, where ``make setup`` (``uv sync --frozen``) has cached the wheels of those
URLs but none of the package index pages that a resolution by name would read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from uv import find_uv_bin

REPO = Path(__file__).resolve().parents[2]
LIBRARIES = tuple(sorted(project.parent for project in REPO.glob("libs/*/pyproject.toml")))
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "data")


def _uv(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [find_uv_bin(), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"uv {' '.join(map(str, args))}:\n{done.stdout}{done.stderr}"


def isolated_env() -> dict[str, str]:
    """This process's environment for a copy's process: without ``PYTHONPATH``, and with
    ``PYTHONSAFEPATH``, so the current directory is not on ``sys.path`` either."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**env, "PYTHONSAFEPATH": "1"}


def carry_out(service: Path, into: Path, *, locked_as: str, uv_cache: Path | None = None) -> Path:
    """Copy ``service`` and the libraries into ``into``, install them; return the Python.

    ``locked_as`` is the package of ``uv.lock`` whose dependencies are installed: the
    service's own name, or ``cello-telemetry`` for a service the lock does not know yet
    (a fresh scaffold); ``uv pip check`` then proves the service needs nothing more.
    ``uv_cache`` is the uv cache the install uses (``UV_CACHE_DIR``); an empty directory
    makes it a first install on a new machine, downloading every wheel.
    """
    libraries = [into / "libs" / library.name for library in LIBRARIES]
    copy = into / "services" / service.name
    for library, copied in zip(LIBRARIES, libraries, strict=True):
        shutil.copytree(library, copied, ignore=_SKIP)
    shutil.copytree(service, copy, ignore=_SKIP)
    pins = into / "pylock.toml"
    _uv(
        "export", "--frozen", "--package", locked_as, "--no-dev", "--no-emit-workspace",
        "--format", "pylock.toml", "--no-header", "--quiet", "--output-file", pins,
        cwd=REPO,
    )  # fmt: skip
    env = os.environ.copy()
    if uv_cache is not None:
        env["UV_CACHE_DIR"] = str(uv_cache)
    venv = into / "venv"
    _uv("venv", "--quiet", "--python", sys.executable, venv, cwd=into, env=env)
    python = venv / "bin" / "python"
    # The lock's closure, by URL and hash (from the cache when it holds the wheel), then
    # the folders on top. --no-deps: their dependencies are all in the lock already.
    # --no-sources: the copied pyproject.toml files name the library as a workspace
    # member; here it is simply the directory given next to the service.
    _uv("pip", "install", "--quiet", "--python", python, "--requirement", pins, cwd=into, env=env)
    _uv(
        "pip", "install", "--no-sources", "--no-deps", "--quiet", "--python", python,
        *libraries, copy,
        cwd=into, env=env,
    )  # fmt: skip
    _uv("pip", "check", "--quiet", "--python", python, cwd=into, env=env)
    return python
