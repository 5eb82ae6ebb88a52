"""A trace on screen: the tracing UIs render the whole trace of one request.

Each test makes a trace through the gateway, waits until the backend holds all of it,
opens the UI's page for that trace id in headless Chromium and checks the rendered
page (the DOM after the UI's scripts ran), then saves a screenshot. The screenshots
go to ``docs/screenshots/`` (``SCREENSHOT_DIR`` elsewhere), where the README shows them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from support.backends import JAEGER_URL, ZIPKIN_URL, wait_for_trace, zipkin_spans
from support.browser import screenshot, wait_for_text
from support.chain import DB, GATEWAY, USERS, expected_tree, span_count
from support.traces import trace_id_of


def _create_user(gateway_url: str) -> str:
    email = f"screen-{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(f"{gateway_url}/api/users", json={"name": "Ada", "email": email})
    assert response.status_code == 201, response.text
    return trace_id_of(response.headers["traceparent"])


def _select_span(browser: Chrome, row_label: str) -> None:
    """Click the waterfall row whose label starts with ``row_label``."""
    xpath = f"//*[starts-with(normalize-space(text()), '{row_label}')]"
    browser.find_element(By.XPATH, xpath).click()


def test_zipkin_ui_shows_every_service_and_the_sql_span(gateway_url: str, browser: Chrome) -> None:
    # The second request is the one shown: on a fresh stack, the first one's trace is
    # mostly connection set-up, which is not what a typical request looks like.
    _create_user(gateway_url)
    trace_id = _create_user(gateway_url)
    expected = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
    wait_for_trace(zipkin_spans, trace_id, span_count(expected))

    browser.get(f"{ZIPKIN_URL}/zipkin/traces/{trace_id}")
    # Zipkin labels each waterfall row "service: span name", names lowercased.
    rows = [
        f"{GATEWAY}: post /api/users",
        f"{GATEWAY}: post /users",
        f"{USERS}: post /users",
        f"{DB}: post /users",
        f"{DB}: connect",
        f"{DB}: insert ",
    ]
    text = wait_for_text(browser, [trace_id, *rows])
    assert re.search(rf"Total Spans\s+{span_count(expected)}\b", text), text
    assert re.search(r"Services\s+3\b", text), text

    # The SQL span, selected: its tags (db.system, db.statement) fill the side panel.
    _select_span(browser, f"{DB}: insert ")
    text = wait_for_text(browser, ["db.statement", "INSERT INTO users"])
    assert re.search(r"db\.system\s+sqlite\b", text), text
    screenshot(browser, "zipkin-trace.png")


def test_zipkin_ui_marks_the_calls_that_failed(gateway_url: str, browser: Chrome) -> None:
    response = httpx.get(f"{gateway_url}/api/users/987654321")
    assert response.status_code == 404
    trace_id = trace_id_of(response.headers["traceparent"])
    expected = expected_tree("GET", "/api/users/{id}", "/users/{id}", sql=("SELECT",))
    tree = wait_for_trace(zipkin_spans, trace_id, span_count(expected))
    (failed_call,) = tree.find(lambda span: span.service == GATEWAY and span.kind == "CLIENT")

    browser.get(f"{ZIPKIN_URL}/zipkin/traces/{trace_id}")
    wait_for_text(browser, [f"{GATEWAY}: get /api/users/{{id}}", f"{DB}: select "])
    # The gateway's call to users is an error (users answered 404): selected, its
    # side panel shows the error tag.
    _select_span(browser, f"{GATEWAY}: get /users/{{id}}")
    text = wait_for_text(browser, [failed_call.span_id, "http.status_code"])
    assert re.search(r"\berror\s+true\b", text), text
    assert re.search(r"http\.status_code\s+404\b", text), text
    screenshot(browser, "zipkin-trace-error.png")


def _docker_engine() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0


def test_jaeger_ui_shows_every_service(gateway_url: str, browser: Chrome) -> None:
    if not _docker_engine():
        pytest.skip(
            "the Jaeger UI needs the Compose stack (no Docker engine here): natively, "
            "Jaeger is built from its Go module, which has no UI assets"
        )
    if "placeholder for the Jaeger UI" in httpx.get(f"{JAEGER_URL}/", timeout=5).text:
        pytest.skip("this stack's Jaeger has no UI assets (a native build); use STACK=compose")
    trace_id = _create_user(gateway_url)
    expected = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
    wait_for_trace(zipkin_spans, trace_id, span_count(expected))

    browser.get(f"{JAEGER_URL}/trace/{trace_id}")
    wait_for_text(browser, [GATEWAY, USERS, DB, "POST /api/users", "INSERT"])
    screenshot(browser, "jaeger-trace.png")
