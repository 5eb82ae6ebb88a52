"""Security properties of the repository and the deployments.

- compose publishes only the gateway and the two UIs, on 127.0.0.1; db and the
  collector stay on the internal network; the service images run as a non-root user;
- no tracked file holds a private key or a token;
- SQL is only ever built with bound parameters: no f-string, ``%`` or ``.format``
  reaches ``execute``/``text``;
- with the native stack up, every listening socket of its processes is on loopback.

Each scanner is first shown a planted violation, so a scanner that finds nothing
because it is broken fails too.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
LOOPBACK = {"127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"}

# -- compose and images -------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """deploy/docker-compose.yml as `docker compose` itself would load it (compose-go)."""
    build = subprocess.run(
        [str(DEPLOY / "native" / "build.sh"), "path", "composecheck"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    tool = build.stdout.strip().splitlines()[-1]
    loaded = subprocess.run(
        [tool, "-f", str(DEPLOY / "docker-compose.yml"), "--env-file", str(DEPLOY / ".env")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    model: dict[str, Any] = json.loads(loaded.stdout)
    return model


def test_compose_publishes_only_the_gateway_and_the_uis_on_loopback(
    compose: dict[str, Any],
) -> None:
    published = {
        (name, int(port["published"]), port.get("host_ip"))
        for name, service in compose["services"].items()
        for port in service.get("ports") or []
    }
    assert published == {
        ("gateway", 8000, "127.0.0.1"),
        ("jaeger", 16686, "127.0.0.1"),
        ("zipkin", 9411, "127.0.0.1"),
        ("victoriametrics", 8428, "127.0.0.1"),
        ("victorialogs", 9428, "127.0.0.1"),
        # The RED metrics page only: the collector's OTLP receivers stay unpublished.
        ("otel-collector", 8889, "127.0.0.1"),
    }
    for name in ("db", "users"):
        service = compose["services"][name]
        assert not service.get("ports"), name
        assert set(service["networks"]) == {"backend"}, name
    assert compose["networks"]["backend"]["internal"] is True


def _final_user(dockerfile: str) -> str | None:
    """The USER in force in the last stage of a Dockerfile (None: root by default)."""
    user = None
    for line in dockerfile.splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            user = None  # every stage starts as root again
        elif words and words[0].upper() == "USER":
            user = words[1]
    return user


def test_final_user_reading_sees_stages() -> None:
    assert _final_user("FROM a\nUSER app\nFROM b\nRUN x\n") is None
    assert _final_user("FROM a\nUSER root\n") == "root"


def test_service_images_run_as_non_root(compose: dict[str, Any]) -> None:
    for name in ("gateway", "users", "db"):
        dockerfile = (REPO / compose["services"][name]["build"]["dockerfile"]).read_text()
        user = _final_user(dockerfile)
        assert user is not None, f"{name} runs as root"
        assert user.split(":")[0] not in ("root", "0"), name
        assert compose["services"][name].get("user") in (None, "", user), name


# -- secrets ------------------------------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "password or secret literal": re.compile(
        r"""(?i)\b(?:password|passwd|secret|api[_-]?key|access[_-]?token)\b\s*[:=]\s*["'][^"'\s]{8,}["']"""
    ),
}


def _secrets_in(text: str) -> list[str]:
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def test_secret_scanner_finds_planted_secrets() -> None:
    planted = [
        "-----BEGIN " + "RSA PRIVATE KEY-----",
        "AKIA" + "ABCDEFGHIJKLMNOP",
        "ghp_" + "a" * 36,
        'api_key = "' + "s3cr3t-value" + '"',
    ]
    for text in planted:
        assert _secrets_in(text), text


def test_no_secrets_in_tracked_files() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    found = []
    for name in filter(None, files):
        path = REPO / name.decode()
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        found += [f"{name.decode()}: {kind}" for kind in _secrets_in(text)]
    assert found == []


# -- SQL is parameterised -----------------------------------------------------------

_SQL_SINKS = {"execute", "executemany", "executescript", "exec_driver_sql", "text"}
#: Where the code that reaches a database lives: each service's and each library's package.
_SOURCES = ("services/*/src/**/*.py", "libs/*/src/**/*.py")


def _sql_calls(source: str) -> dict[int, bool]:
    """Each line that hands SQL to a sink, and whether an f-string, ``%``, ``+`` or
    ``.format`` built that SQL."""
    calls = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in _SQL_SINKS:
            continue
        arg = node.args[0]
        calls[node.lineno] = (
            isinstance(arg, ast.JoinedStr)
            or (isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mod | ast.Add))
            or (
                isinstance(arg, ast.Call)
                and isinstance(arg.func, ast.Attribute)
                and arg.func.attr == "format"
            )
        )
    return calls


def test_sql_scanner_finds_string_built_sql() -> None:
    planted = (
        "c.execute(f'SELECT * FROM users WHERE id = {i}')\n"
        "c.execute('SELECT * FROM users WHERE id = %s' % i)\n"
        "text('DELETE FROM users WHERE id = {}'.format(i))\n"
        "c.exec_driver_sql('SELECT ' + column)\n"
        "c.execute(select(users).where(users.c.id == i))\n"
        "c.execute('PRAGMA busy_timeout=5000')\n"
        "c.close()\n"
    )
    assert _sql_calls(planted) == {1: True, 2: True, 3: True, 4: True, 5: False, 6: False}


def test_sql_is_parameterised_only() -> None:
    sources = {pattern: sorted(REPO.glob(pattern)) for pattern in _SOURCES}
    # A scan that reads nothing, or misses db's statements, proves nothing.
    assert [pattern for pattern, paths in sources.items() if not paths] == []
    calls = {
        str(path.relative_to(REPO)): _sql_calls(path.read_text())
        for paths in sources.values()
        for path in paths
    }
    in_db = sum(len(lines) for name, lines in calls.items() if name.startswith("services/db/"))
    assert in_db >= 10, "the scan no longer sees db's statements"
    built = {name: [n for n, b in lines.items() if b] for name, lines in calls.items()}
    assert {name: lines for name, lines in built.items() if lines} == {}


# -- the native stack listens on loopback only --------------------------------------

_LISTENER = re.compile(r"^LISTEN\s+\d+\s+\d+\s+(\S+):(\d+)\s+\S+\s+users:\((.*)\)$")


def _descendants(pids: set[int]) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found = set(pids)
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


@pytest.mark.e2e
def test_native_stack_listens_on_loopback_only(native_stack: Path) -> None:
    roots = {int(f.read_text()): f.stem for f in native_stack.glob("*.pid")}
    # No pid file (a stack started from another checkout, say) would check nothing.
    components = {"gateway", "users", "db", "otelcol", "jaeger", "zipkin"}
    assert set(roots.values()) >= components, f"pid files in {native_stack}"
    ours = _descendants(set(roots))
    lines = subprocess.run(
        ["ss", "-Hltnp"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    listeners: dict[int, list[str]] = {}
    for line in lines:
        match = _LISTENER.match(line.strip())
        if not match:
            continue
        address, port, users = match.groups()
        for pid in map(int, re.findall(r"pid=(\d+)", users)):
            if pid in ours:
                listeners.setdefault(pid, []).append(f"{address}:{port}")
    silent = {name for pid, name in roots.items() if pid not in listeners}
    assert silent == set(), f"components with no listening socket: {silent}"
    exposed = [
        a
        for addresses in listeners.values()
        for a in addresses
        if a.rsplit(":", 1)[0] not in LOOPBACK
    ]
    assert exposed == []
