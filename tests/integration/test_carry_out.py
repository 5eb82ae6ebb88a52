"""A service is a folder you can carry out.

``services/users/`` and the library are copied into an empty directory and installed
there alone, with the versions of the lock, through an empty uv cache of their own: the
install a newcomer's machine makes, downloading every wheel, on every run. That copy of
users runs against a db started from the repository and its spans join the caller's
trace: nothing it needs was left behind.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.carry_out import LIBRARIES, REPO, carry_out, isolated_env
from support.chain import DB, USERS, expected_tree, span_count
from support.otlp import OtlpReceiver
from support.traces import build_tree, poll_until
from tools.ports import free_ports
from tools.run import Service, ServiceGroup


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of the copy's own virtual environment, installed as on a new machine."""
    into = tmp_path_factory.mktemp("carry-out")
    empty_cache = tmp_path_factory.mktemp("uv-cache")
    return carry_out(REPO / "services" / "users", into, locked_as="users", uv_cache=empty_cache)


def test_the_copy_holds_users_and_the_library_only(python: Path) -> None:
    probe = (
        "import importlib.util, users, cello_telemetry;"
        "print(users.__file__);"
        "print(*[n for n in ('gateway', 'db', 'tools', 'support') if importlib.util.find_spec(n)])"
    )
    done = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, env=isolated_env(), cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    location, others = done.stdout.splitlines()
    assert Path(location).is_relative_to(python.parents[1])  # installed, not the repository's
    assert others == ""


def test_the_copy_runs_the_locked_versions(python: Path) -> None:
    lock = tomllib.loads((python.parents[2] / "pylock.toml").read_text())
    locked = {package["name"]: package["version"] for package in lock["packages"]}
    probe = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    installed = {name.lower().replace("_", "-"): v for name, v in json.loads(done.stdout).items()}
    assert locked  # the export named the closure
    ours = {library.name: "0.1.0" for library in LIBRARIES} | {"users": "0.1.0"}
    assert installed == locked | ours


@pytest.fixture
def users_url(python: Path, receiver: OtlpReceiver, tmp_path: Path) -> Iterator[str]:
    """db from the repository, users from the copy; users' base URL."""
    db_port, users_port = free_ports(2)
    copied_users = Service(
        "users",
        "users",
        users_port,
        {**isolated_env(), "DB_SERVICE_URL": f"http://127.0.0.1:{db_port}"},
        python=str(python),
    )
    group = ServiceGroup(
        [Service("db", "db", db_port, {}), copied_users],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'users.db'}",
        },
        log_dir=tmp_path / "logs",
    )
    group.start(timeout=60)
    try:
        yield f"http://127.0.0.1:{users_port}"
    finally:
        group.stop()


def test_the_copy_joins_the_trace(users_url: str, receiver: OtlpReceiver) -> None:
    trace_id, caller = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(
        f"{users_url}/users",
        json={"name": "Ada", "email": email},
        headers={"traceparent": f"00-{trace_id}-{caller}-01"},
        timeout=10,
    )
    assert response.status_code == 201, response.text

    # The users part of the gateway's usual trace: users -> db -> INSERT.
    _, _, _, (gateway_client,) = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
    (expected,) = gateway_client[3]
    spans = poll_until(
        lambda: receiver.spans(trace_id),
        lambda got: len(got) >= span_count(expected),
        timeout=30,
        what=f"the spans of trace {trace_id}",
    )
    tree = build_tree(spans, remote_parent=caller)
    assert tree.shape() == expected
    assert tree.span.parent_id == caller
    assert {node.span.service for node in tree.walk()} == {USERS, DB}
    assert tree.span.attributes["resource.service.name"] == USERS
