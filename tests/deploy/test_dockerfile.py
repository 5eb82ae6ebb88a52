"""services/Dockerfile, the one image recipe, followed without Docker.

The recipe is read as BuildKit reads it (stages, ``ARG`` and ``ENV`` scoping,
``.dockerignore``) and replayed in an empty directory standing for the image's root:
the build stage's ``COPY`` lines are the only files it gets, its ``uv sync`` lines
install from them, offline from uv's cache. Then everything but what the final stage
copies from the build is deleted, and the final stage's ``CMD``, with the image's
environment and working directory, must serve the service the image was built for and
pass the image's own ``HEALTHCHECK``. What is checked is what breaks a real build or a
real container: a workspace member the service needs and the recipe does not copy (or
``.dockerignore`` keeps out), an editable install pointing into the build stage, a
``SERVICE`` the final stage never declared, a user the image never creates, a uv that
is not the pinned one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploytools import REPO, dotenv
from dockerfile import Dockerfile, Resolved, dockerignore, ignored, substitute
from uv import find_uv_bin

from support.traces import poll_until
from tools.ports import free_port

pytestmark = pytest.mark.integration

DOCKERFILE = REPO / "services" / "Dockerfile"
SERVICES = ("gateway", "users", "db")
#: The base image's (python:*-slim) environment, which the recipe's ENV PATH extends.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def recipe() -> Dockerfile:
    return Dockerfile.parse(DOCKERFILE.read_text())


def workspace() -> dict[str, dict[str, Any]]:
    """uv.lock's workspace members by name: ``{"users": <its [[package]] table>}``."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    members = set(lock["manifest"]["members"])
    return {p["name"]: p for p in lock["package"] if p["name"] in members}


def needed_members(service: str) -> dict[str, str]:
    """The workspace members ``service`` installs (itself included): name -> folder."""
    members = workspace()
    found: dict[str, str] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(service, ())]
    while todo:
        name, extras = todo.pop()
        package = members[name]
        found[name] = package["source"]["editable"]
        optional = package.get("optional-dependencies", {})
        wanted = package.get("dependencies", [])
        wanted += [d for extra in extras for d in optional.get(extra, [])]
        for dependency in wanted:
            if dependency["name"] in members and dependency["name"] not in found:
                todo.append((dependency["name"], tuple(dependency.get("extra", ()))))
    return found


def uv_syncs(build: Resolved) -> list[list[str]]:
    """The build stage's ``uv sync`` commands, their variables expanded as the shell would."""
    scope = {**build.args, **build.env}
    commands = [shlex.split(run.arguments) for run in build.all("RUN")]
    return [
        [substitute(w, scope) for w in words] for words in commands if words[:2] == ["uv", "sync"]
    ]


@dataclass(frozen=True)
class Image:
    """A service's image, replayed under ``root``: its environment, where it runs from."""

    service: str
    root: Path
    final: Resolved

    def host(self, path: str) -> Path:
        """Where a path of the image is under ``root``."""
        return self.root / path.lstrip("/")


def _copy(source: Path, destination: Path, patterns: list[str], into_folder: bool) -> None:
    """``COPY source destination`` from the build context, as BuildKit does it."""
    relative = source.relative_to(REPO).as_posix()
    assert source.exists(), f"COPY {relative}: not in the build context"
    assert not ignored(patterns, relative), f"COPY {relative}: .dockerignore keeps it out"
    if source.is_dir():  # a folder's contents, less what .dockerignore keeps out
        for path in sorted(source.rglob("*")):
            inside = path.relative_to(REPO).as_posix()
            if path.is_file() and not ignored(patterns, inside):
                target = destination / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
    else:
        target = destination / source.name if into_folder else destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)


def replay(service: str, root: Path, port: int) -> Image:
    """Build ``service``'s image under ``root``: the build stage, then the final stage's
    copies from it, and nothing else of the build left behind."""
    dockerfile = recipe()
    build_stage, final_stage = dockerfile.stages[0], dockerfile.stages[-1]
    build = dockerfile.resolve(build_stage, {"SERVICE": service}, BASE_ENV)
    final = dockerfile.resolve(final_stage, {"SERVICE": service, "PORT": str(port)}, BASE_ENV)
    image = Image(service, root, final)
    patterns = dockerignore(REPO)
    workdir = image.host("/")
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(image.host(build.env["UV_PROJECT_ENVIRONMENT"])),
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
    }
    syncs = iter(uv_syncs(build))
    for step in build.steps:
        if step.keyword == "WORKDIR":
            workdir = image.host(step.arguments)
            workdir.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            *sources, target = shlex.split(step.arguments)
            into = target.endswith("/") or len(sources) > 1
            for source in sources:
                _copy(REPO / source, workdir / target, patterns, into)
        elif step.keyword == "RUN" and shlex.split(step.arguments)[:2] == ["uv", "sync"]:
            command = [find_uv_bin(), *next(syncs)[1:]]
            command[command.index("--python") + 1] = sys.executable
            done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
    # The final stage has what it copies from the build stage, and nothing else of it.
    kept = []
    for step in final.all("COPY"):
        flags = [w for w in shlex.split(step.arguments) if w.startswith("--from=")]
        if flags:
            assert flags == [f"--from={build_stage.name}"], step.arguments
            source, target = shlex.split(step.arguments)[-2:]
            assert source == target, f"{source} moves to {target}: a venv is not relocatable"
            kept.append(image.host(source))
    for entry in root.iterdir():
        if not any(entry == k or entry in k.parents for k in kept):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return image


@pytest.fixture(scope="module", params=SERVICES)
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Image:
    service: str = request.param
    return replay(service, tmp_path_factory.mktemp(f"image-{service}"), free_port())


def image_env(image: Image) -> dict[str, str]:
    """The container's environment, as ``docker run`` would start it here: paths of the
    image under its root, and only loopback to listen on and no collector to send to."""
    env = dict(image.final.env)
    env["PATH"] = ":".join(
        str(image.host(d)) if image.host(d).exists() else d for d in env["PATH"].split(":")
    )
    env["HOST"] = "127.0.0.1"  # as `docker run -e HOST=127.0.0.1`; the image's is checked below
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    return env


@pytest.fixture(scope="module")
def container(image: Image) -> Iterator[subprocess.Popen[bytes]]:
    """The image's ``CMD``, run from its ``WORKDIR`` with its environment."""
    assert not image.final.all("ENTRYPOINT"), "the CMD is what runs the service"
    cmd = image.final.all("CMD")[-1].exec_form()
    assert cmd is not None, "CMD in shell form: a shell, not the service, gets SIGTERM"
    workdir = image.host(image.final.all("WORKDIR")[-1].arguments)
    workdir.mkdir(parents=True, exist_ok=True)
    with (image.root.parent / f"{image.service}.log").open("wb") as log:
        process = subprocess.Popen(cmd, cwd=workdir, env=image_env(image), stdout=log, stderr=log)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_image_holds_the_service_and_the_members_it_needs_only(image: Image) -> None:
    python = image.host(image.final.env["PATH"].split(":")[0]) / "python"
    names = "import importlib.metadata as m; print(*sorted(d.name for d in m.distributions()))"
    done = subprocess.run([python, "-c", names], capture_output=True, text=True, check=True)
    installed = set(done.stdout.split()) & set(workspace())
    assert installed == set(needed_members(image.service))


def test_the_image_serves_the_service_it_was_built_for(
    image: Image, container: subprocess.Popen[bytes]
) -> None:
    port = image.final.env["PORT"]

    def probe() -> httpx.Response | None:
        if container.poll() is not None:
            return None  # it has exited: nothing to wait for
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)

    health = poll_until(
        probe,
        lambda answer: answer is None or answer.status_code == 200,
        timeout=30,
        what=f"{image.service}'s /health",
    )
    log = (image.root.parent / f"{image.service}.log").read_text(errors="replace")
    assert health is not None, f"{image.service} exited with {container.returncode}:\n{log}"
    assert health.json()["status"] == "ok"
    # exec: the service itself is the container's first process, and so gets its SIGTERM.
    argv = Path(f"/proc/{container.pid}/cmdline").read_bytes().split(b"\0")[:-1]
    assert [Path(argv[0].decode()).name, *map(bytes.decode, argv[1:])] == [
        "python", "-m", image.service
    ]  # fmt: skip
    healthcheck = image.final.all("HEALTHCHECK")[-1].command()
    done = subprocess.run(healthcheck, env=image_env(image), timeout=10)
    assert done.returncode == 0, "the image's own HEALTHCHECK fails on a healthy service"
    # `docker stop`: SIGTERM to the first process, then SIGKILL after 10 s.
    container.send_signal(signal.SIGTERM)
    assert container.wait(timeout=10) == 0


def test_the_image_listens_on_every_interface_and_exposes_its_port(image: Image) -> None:
    # On loopback inside a container, nothing outside it could reach the service.
    assert image.final.env["HOST"] == "0.0.0.0"
    assert [e.arguments for e in image.final.all("EXPOSE")] == [image.final.env["PORT"]]


def test_the_image_runs_as_a_user_it_creates() -> None:
    final = recipe().stages[-1]
    user = final.last("USER")
    assert user is not None, "the image runs as root"
    name = user.arguments.split(":")[0]
    assert name not in ("root", "0")
    commands = [
        shlex.split(command)
        for run in final.all("RUN")
        for command in re.split(r"&&|\|\||;", run.arguments)
    ]
    created = [words for words in commands if words[:1] in (["useradd"], ["adduser"])]
    assert [words[-1] for words in created] == [name], f"USER {name}: no RUN creates it"


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_are_a_layer_of_their_own(service: str) -> None:
    """Only pyproject.toml files and the lock reach the first ``uv sync``, which installs
    no workspace member: a change to the source leaves the dependency layer cached."""
    dockerfile = recipe()
    build = dockerfile.resolve(dockerfile.stages[0], {"SERVICE": service}, BASE_ENV)
    first_sync = next(
        i for i, step in enumerate(build.steps) if shlex.split(step.arguments)[:2] == ["uv", "sync"]
    )
    copied = {
        word
        for step in build.steps[:first_sync]
        if step.keyword == "COPY"
        for word in shlex.split(step.arguments)[:-1]
    }
    folders = needed_members(service).values()
    assert copied == {"pyproject.toml", "uv.lock", *(f"{f}/pyproject.toml" for f in folders)}
    first, *_, last = uv_syncs(build)
    assert "--no-install-workspace" in first
    assert all("--frozen" in sync and "--no-dev" in sync for sync in (first, last))


def test_uv_and_python_are_the_pinned_versions() -> None:
    dockerfile = recipe()
    build = dockerfile.resolve(dockerfile.stages[0], {}, BASE_ENV)
    env = dotenv()
    assert build.args["UV_VERSION"] == env["UV_VERSION"]
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    assert f"uv=={env['UV_VERSION']}" in dev
    bootstrap = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert re.search(rf"^UV_VERSION={re.escape(env['UV_VERSION'])}$", bootstrap, re.M)
    assert dockerfile.global_args["PYTHON_VERSION"] == env["PYTHON_VERSION"]
    assert {stage.base for stage in dockerfile.stages} == {f"python:{env['PYTHON_VERSION']}-slim"}
