"""The layout the README promises: every service is a folder of its own, every library one job.

A service imports nothing from another service, nor from the tools or the tests; the
libraries under libs/ are the only thing it shares. The carry-out test (tests/integration)
proves it for users by running a copy; this check covers every service, and every module
of it, without starting anything. Each library imports only the libraries below it, so
the telemetry package can be added to any Cello app alone (with the problem type its edge
answers in), and no library calls back into a service.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = sorted(project.parent.name for project in REPO.glob("services/*/pyproject.toml"))
NOT_FOR_SERVICES = {"tools", "support", "bench", "tests", "services"}
LIBRARIES = {package.name: package for package in REPO.glob("libs/*/src/*") if package.is_dir()}
#: What each library may import of the others: telemetry needs only the problem type
#: its edge answers in; only the runner, which starts a service, builds on the rest.
LAYERS = {
    "cello_problem": set(),
    "cello_settings": set(),
    "cello_telemetry": {"cello_problem"},
    "cello_runner": {"cello_settings", "cello_telemetry"},
}


def imported(package: Path) -> set[str]:
    """The top-level names a package imports; ``..`` (out of the package) as itself."""
    names: set[str] = set()
    for module in package.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level > 1:
                    names.add("..")
                elif node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def test_the_three_services_are_found() -> None:
    assert {"gateway", "users", "db"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    package = REPO / "services" / service / "src" / service
    assert (package / "__main__.py").is_file()  # runs as python -m <service>
    forbidden = (set(SERVICES) - {service}) | NOT_FOR_SERVICES | {".."}
    assert imported(package) & forbidden == set()


def test_the_check_sees_an_import_of_another_service(tmp_path: Path) -> None:
    (tmp_path / "client.py").write_text("from db.settings import SERVICE_NAME\nfrom ..x import y\n")
    assert {"db", ".."} <= imported(tmp_path)


def test_the_gateway_documents_the_limits_users_enforces() -> None:
    from gateway import openapi
    from users import rules

    assert (openapi.NAME_MAX, openapi.EMAIL_MAX) == (rules.NAME_MAX, rules.EMAIL_MAX)


def test_the_libraries_are_found() -> None:
    assert set(LIBRARIES) == set(LAYERS)


@pytest.mark.parametrize("library", sorted(LAYERS))
def test_a_library_imports_only_the_libraries_below_it(library: str) -> None:
    names = imported(LIBRARIES[library])
    ours = (set(LIBRARIES) - {library}) | set(SERVICES) | NOT_FOR_SERVICES | {".."}
    assert names & ours == LAYERS[library]  # exactly: a layer nobody uses is a stale rule
