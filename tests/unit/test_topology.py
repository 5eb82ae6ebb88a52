"""tools.topology: deploy/.env is the one place of the native stack's ports and names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.topology import DOTENV, Topology, read_dotenv, topology

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_the_urls_are_built_from_the_ports_in_deploy_env() -> None:
    values = read_dotenv()
    values.update(GATEWAY_PORT="18000", SPANMETRICS_PORT="18889", VICTORIALOGS_PORT="19428")
    moved = Topology.from_dotenv(values)
    assert moved.gateway_url == "http://127.0.0.1:18000"
    assert moved.red_metrics_url == "http://127.0.0.1:18889/metrics"
    assert moved.victorialogs_url == "http://127.0.0.1:19428"


def test_read_dotenv_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# a comment\n\nGATEWAY_PORT=8000\n  DB_PORT = 8002 \n")
    assert read_dotenv(env) == {"GATEWAY_PORT": "8000", "DB_PORT": "8002"}


@pytest.mark.parametrize(("key", "value"), [("DB_PORT", "eight"), ("DB_SERVICE_NAME", "")])
def test_a_missing_or_bad_value_is_refused_by_name(key: str, value: str) -> None:
    with pytest.raises(ValueError, match=key):
        Topology.from_dotenv({**read_dotenv(), key: value})


def test_the_service_names_are_the_ones_the_services_give_themselves() -> None:
    from db.settings import SERVICE_NAME as DB
    from gateway.settings import SERVICE_NAME as GATEWAY
    from users.settings import SERVICE_NAME as USERS

    assert topology().services == (GATEWAY, USERS, DB)


def test_stack_sh_takes_every_port_of_the_topology_from_deploy_env() -> None:
    script = (REPO / "deploy" / "stack.sh").read_text()
    assert DOTENV == REPO / "deploy" / ".env"
    # Each port deploy/.env names is read with envval, and its number appears nowhere
    # else in the script's code (comments aside).
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    for key, value in read_dotenv().items():
        if key.endswith("_PORT"):
            assert f"$(envval {key})" in code, key
            assert not re.search(rf"\b{value}\b", code), f"{key}={value} written out in stack.sh"
