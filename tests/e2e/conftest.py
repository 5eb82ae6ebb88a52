"""The full stack: services, collector, Jaeger and Zipkin, as ``make up`` runs it.

A stack that is already up (``make up``) is used as it is and left running; otherwise
the session starts one with ``deploy/stack.sh up`` and always stops it again with
``deploy/stack.sh down``, whatever the tests did. Tests of tail sampling restart it
with ``SAMPLING=tail``, and tests of exact metrics under head sampling with
``OTEL_TRACES_SAMPLER_ARG=0.1``; both put it back as they found it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver import Chrome

from support.backends import JAEGER_URL, ZIPKIN_URL
from support.browser import BrowserMissingError, ensure_chromium, headless_chromium
from tools.topology import topology

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "deploy" / "stack.sh"
GATEWAY_URL = topology().gateway_url
HEALTH = (f"{GATEWAY_URL}/health", f"{JAEGER_URL}/", f"{ZIPKIN_URL}/health")


def _all_up() -> bool:
    try:
        return all(httpx.get(url, timeout=2).status_code == 200 for url in HEALTH)
    except httpx.HTTPError:
        return False


def _stack(command: str, timeout: float, sampling: str = "head", **services_env: str) -> None:
    # The first run on a machine builds the collector and Jaeger (minutes); the
    # build shows its progress, so let it through to the terminal. The demo's
    # flaky-db scenario, failing every time it is asked for, gives the failure
    # test a dead hop on demand without stopping a process of the stack.
    env = {**os.environ, "DEMO_SCENARIOS": "1", "DEMO_FAILURE_RATE": "1", "SAMPLING": sampling}
    env.update(services_env)  # e.g. OTEL_TRACES_SAMPLER_ARG, which stack.sh passes on
    subprocess.run([str(STACK), command], cwd=REPO, check=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def gateway_url() -> Iterator[str]:
    """The gateway of a running stack; started (and stopped) here when needed."""
    if _all_up():
        yield GATEWAY_URL
        return
    try:
        _stack("up", timeout=3600)
        yield GATEWAY_URL
    finally:
        _stack("down", timeout=300)


@pytest.fixture(scope="module")
def tail_sampling_gateway() -> Iterator[str]:
    """The gateway of a stack whose collector tail-samples (``SAMPLING=tail``).

    The stack is restarted in that mode for the test module, then put back as it was
    found: up in the default (head) mode, or stopped.
    """
    was_up = _all_up()
    _stack("down", timeout=300)
    try:
        _stack("up", timeout=3600, sampling="tail")
        yield GATEWAY_URL
    finally:
        _stack("down", timeout=300)
        if was_up:
            _stack("up", timeout=3600)


@pytest.fixture(scope="module")
def tenth_sampled_gateway() -> Iterator[str]:
    """The gateway of a stack whose services keep one new trace in ten
    (``OTEL_TRACES_SAMPLER_ARG=0.1``); put back as it was found afterwards."""
    was_up = _all_up()
    _stack("down", timeout=300)
    try:
        _stack("up", timeout=3600, OTEL_TRACES_SAMPLER_ARG="0.1")
        yield GATEWAY_URL
    finally:
        _stack("down", timeout=300)
        if was_up:
            _stack("up", timeout=3600)


@pytest.fixture(scope="session")
def browser() -> Iterator[Chrome]:
    """Headless Chromium, installed first when missing (as root, with apt)."""
    try:
        ensure_chromium()
    except BrowserMissingError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))  # CI must run the UI tests, not report them skipped
        pytest.skip(str(exc))
    with headless_chromium(height=1000) as driver:
        yield driver
