"""``make new-service NAME=orders``: scaffold a traced Cello service.

Writes ``services/<name>/`` in the layout of the other services: its
``pyproject.toml`` and the package ``src/<name>/`` (``__init__.py``, ``__main__.py``,
``app.py``, ``routes.py``, ``settings.py``), traced and with ``GET /health`` and one
example route; an integration test in ``tests/integration/test_<name>_service.py``;
then prints the entry to add to ``deploy/docker-compose.yml``, which builds it with
``services/Dockerfile`` like every service. The templates are in
``tools/templates/service/``.

    python -m tools.new_service orders [--port 8003] [--service-name orders-service]

``make new-service`` then adds the service to ``uv.lock`` and ``.venv``. ``--services``
and ``--tests`` write elsewhere (the scaffold's own test uses a temporary directory).
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "services"
TESTS = REPO / "tests" / "integration"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "service"
PACKAGE_FILES = ("__init__.py", "__main__.py", "app.py", "routes.py", "settings.py")

_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")
_PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")
_DEFAULT_PORT = re.compile(r"\bport\((\d+)\)")


class ScaffoldError(ValueError):
    """The service cannot be scaffolded as asked (bad or taken name, bad port)."""


def check_name(name: str, services: Path, tests: Path) -> None:
    """``name`` must be a lowercase Python identifier that no service, module or test uses.

    A service imports as plain ``<name>``, so the name of any module already importable
    here (another service, ``tools``, the standard library's ``email``) is taken too.
    """
    if not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise ScaffoldError(
            f"NAME={name!r}: use a lowercase Python identifier of at most 31 characters "
            "(letters, digits, _; starting with a letter), e.g. orders"
        )
    for taken in (services / name, tests / f"test_{name}_service.py"):
        if taken.exists():
            raise ScaffoldError(f"NAME={name!r} is taken: {taken} exists")
    if importlib.util.find_spec(name) is not None:
        raise ScaffoldError(f"NAME={name!r} is taken: a module of that name exists already")


def next_free_port(services: Path = SERVICES) -> int:
    """The port after the highest default port of the services in ``services`` (8003 here)."""
    ports = [
        int(match)
        for settings in services.glob("*/src/*/settings.py")
        for match in _DEFAULT_PORT.findall(settings.read_text(encoding="utf-8"))
    ]
    return max(ports, default=8002) + 1


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{{ key }}`` placeholders; an unknown key is an error, not an empty string."""
    return _PLACEHOLDER.sub(lambda match: values[match[1]], template)


def _template(name: str) -> str:
    return (TEMPLATES / f"{name}.tmpl").read_text(encoding="utf-8")


def scaffold(
    name: str,
    *,
    port: int | None = None,
    service_name: str | None = None,
    services: Path = SERVICES,
    tests: Path = TESTS,
) -> dict[str, str]:
    """Write the service's folder and its test; return the values the templates got."""
    services, tests = services.resolve(), tests.resolve()
    check_name(name, services, tests)
    port = next_free_port() if port is None else port
    if not 1024 <= port <= 65535:
        raise ScaffoldError(f"PORT={port}: use a port between 1024 and 65535")
    values = {
        "name": name,
        "module": name,
        "service_name": service_name or f"{name.replace('_', '-')}-service",
        "path": name.replace("_", "-"),
        "port": str(port),
    }
    package = services / name / "src" / name
    package.mkdir(parents=True)
    project = services / name / "pyproject.toml"
    project.write_text(render(_template("pyproject.toml"), values), encoding="utf-8")
    for file in PACKAGE_FILES:
        (package / file).write_text(render(_template(file), values), encoding="utf-8")
    tests.mkdir(parents=True, exist_ok=True)
    test_file = tests / f"test_{name}_service.py"
    test_file.write_text(render(_template("test_service.py"), values), encoding="utf-8")
    return values


def _display(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the package name, a lowercase identifier (orders)")
    parser.add_argument("--port", type=int, help="default PORT (default: the next free one)")
    parser.add_argument("--service-name", help="service.name (default: <name>-service)")
    parser.add_argument("--services", type=Path, default=SERVICES, help=argparse.SUPPRESS)
    parser.add_argument("--tests", type=Path, default=TESTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        values = scaffold(
            args.name,
            port=args.port,
            service_name=args.service_name,
            services=args.services,
            tests=args.tests,
        )
    except ScaffoldError as exc:
        print(f"new-service: {exc}", file=sys.stderr)
        return 2
    folder = _display(args.services.resolve() / args.name)
    test_file = _display(args.tests.resolve() / f"test_{args.name}_service.py")
    name, port, path = values["name"], values["port"], values["path"]
    print(
        f"new-service: {values['service_name']} in {folder}/ and its test in {test_file}\n\n"
        f"  run it:   .venv/bin/python -m {values['module']}    (PORT={port} by default)\n"
        f"  try it:   curl -i http://127.0.0.1:{port}/{path}/1\n"
        f"  test it:  .venv/bin/python -m pytest {test_file}\n"
        f"  call it:  TracedClient('http://127.0.0.1:{port}', "
        f"peer_service='{values['service_name']}') from another service\n\n"
        "For Docker Compose, add this under `services:` in deploy/docker-compose.yml\n"
        f"(and `{name}: {{condition: service_healthy}}` under the caller's depends_on):\n"
    )
    print(render(_template("compose.yml"), values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
