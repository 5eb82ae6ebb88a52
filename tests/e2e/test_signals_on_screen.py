"""The other two signals on screen, in the UIs a user without Docker has.

- From a trace's page in Zipkin, its "View Logs" link (``ZIPKIN_UI_LOGS_URL``) opens
  VictoriaLogs' UI on that trace: the log lines of all three services, each with the
  trace id.
- VictoriaMetrics' UI draws the services' latency graph, from the link ``make demo``
  prints (:meth:`tools.backends.Backends.latency_link`).

Both pages are checked as rendered (the DOM after the UIs' scripts ran), then saved in
``docs/screenshots/``, where the README shows them.
"""

from __future__ import annotations

import uuid
from math import isnan

import httpx
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from support.backends import ZIPKIN_URL, wait_for_trace, zipkin_spans
from support.browser import screenshot, wait_for_text
from support.chain import DB, GATEWAY, USERS, expected_tree, span_count
from support.traces import poll_until, trace_id_of
from tools.backends import Backends, latency_query
from tools.red import promql

SERVICES = (GATEWAY, USERS, DB)
CREATE_TREE = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
ACCESS_LINES = ("POST /api/users 201", "POST /users 201")


def test_zipkin_logs_link_opens_the_traces_log_lines(gateway_url: str, browser: Chrome) -> None:
    email = f"screen-{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(f"{gateway_url}/api/users", json={"name": "Ada", "email": email})
    assert response.status_code == 201, response.text
    trace_id = trace_id_of(response.headers["traceparent"])
    wait_for_trace(zipkin_spans, trace_id, span_count(CREATE_TREE))

    browser.get(f"{ZIPKIN_URL}/zipkin/traces/{trace_id}")
    wait_for_text(browser, [trace_id, f"{DB}: insert "])
    trace_page = browser.current_window_handle
    # The link is an item of the trace header's menu, and opens a new tab.
    link = _open_logs_item(browser, trace_id)
    assert "Logs" in link.text, link.text
    link.click()
    new_tab = poll_until(
        lambda: [handle for handle in browser.window_handles if handle != trace_page],
        bool,
        timeout=10,
        what="the logs tab Zipkin's link opens",
    )
    browser.switch_to.window(new_tab[0])
    try:
        # The log lines of all three services arrive within the loggers' export delay;
        # the UI shows what the store held when it loaded, so reload until they are in.
        poll_until(
            lambda: _rendered_after_reload(browser, trace_id),
            lambda text: all(name in text for name in (*SERVICES, *ACCESS_LINES)),
            timeout=60,
            interval=2.0,
            what=f"VictoriaLogs' UI showing the log lines of {', '.join(SERVICES)}",
        )
        text = wait_for_text(browser, [trace_id])
        # Each service's access line shows the trace id (the query box is not page text).
        assert text.count(trace_id) >= len(SERVICES), text
        assert email not in text
        screenshot(browser, "zipkin-to-logs.png")
    finally:
        browser.close()
        browser.switch_to.window(trace_page)


def _open_logs_item(browser: Chrome, trace_id: str) -> WebElement:
    """Open the trace header's menu and return its item linking to the trace's logs."""
    xpath = f"//a[@role='menuitem'][contains(@href, 'trace_id:{trace_id}')]"
    item = browser.find_element(By.XPATH, xpath)  # the menu is in the page, closed
    # The button that opens it shows Material's menu icon (three bars), by its path.
    icon = "//*[name()='path'][starts-with(@d, 'M3 18h18v-2H3v2z')]"
    browser.find_element(By.XPATH, f"//button[.{icon}]").click()
    poll_until(item.is_displayed, bool, timeout=5, what="Zipkin's trace menu open")
    return item


def _rendered_after_reload(browser: Chrome, trace_id: str) -> str:
    browser.refresh()
    return wait_for_text(browser, [trace_id], timeout=15)


def test_metrics_ui_draws_the_latency_graph_of_the_three_services(
    gateway_url: str, browser: Chrome
) -> None:
    backends = Backends.from_env()
    link = backends.latency_link(SERVICES, minutes=5)  # the test's own requests, larger
    # The graph is a rate: it needs each series to grow between two of the services'
    # exports (every 5 s). So keep the requests coming while waiting for the store to
    # answer the graph's own query for all three services, then draw it. (A burst all
    # inside one export is a series that starts at its total, and its rate is zero.)
    with httpx.Client() as http:

        def request_then_series() -> set[str]:
            assert http.get(f"{gateway_url}/api/users/987654321").status_code == 404
            answer = promql(http, backends.metrics_url, latency_query(SERVICES))
            return {labels.get("service_name", "") for labels, p99 in answer if not isnan(p99)}

        poll_until(
            request_then_series,
            lambda names: names >= set(SERVICES),
            timeout=90,
            interval=0.5,
            what=f"latency series of {', '.join(SERVICES)} in VictoriaMetrics",
        )

    size = browser.get_window_size()
    browser.set_window_size(size["width"], 1250)  # room for the legend under the graph
    try:
        browser.get(link)
        text = wait_for_text(browser, [f'service_name="{name}"' for name in SERVICES])
        assert "No data" not in text, text
        assert browser.find_elements(By.CSS_SELECTOR, "canvas"), "no graph drawn"
        screenshot(browser, "latency-graph.png")
    finally:
        browser.set_window_size(size["width"], size["height"])
