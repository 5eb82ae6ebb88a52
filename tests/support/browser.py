"""Headless Chromium for tests that look at a UI: Debian's ``chromium`` and its
``chromedriver``, driven through Selenium.

:func:`ensure_chromium` installs both with apt when they are missing and the test
runs as root (a fresh CI machine); :func:`headless_chromium` opens a browser with a
fresh profile and closes it again::

    ensure_chromium()
    with headless_chromium() as browser:
        browser.get("http://127.0.0.1:9411/zipkin/traces/" + trace_id)
        text = wait_for_text(browser, ["api-gateway", "db-proxy"])
        browser.save_screenshot("trace.png")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from .traces import poll_until

REPO = Path(__file__).resolve().parents[2]
#: Where :func:`screenshot` saves: ``docs/screenshots/``, which the README shows.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or REPO / "docs" / "screenshots")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: What apt installs; the fonts make a screenshot's text readable on a bare machine.
PACKAGES = ("chromium", "chromium-driver", "fonts-liberation")

# Headless, as root (no sandbox), and quiet on the network: without the last four,
# Chromium's own background connections (updates, sync, field trials) are refused on a
# closed network, and it can hold the page load up waiting for them.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class BrowserMissingError(RuntimeError):
    """Chromium or chromedriver is not installed, and this process cannot install them."""


def missing() -> list[Path]:
    """The browser binaries that are not installed."""
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]


def ensure_chromium(timeout: float = 1200) -> None:
    """Install Chromium and chromedriver with apt if they are missing.

    Only root can; anyone else gets :class:`BrowserMissingError` with the command to run.
    """
    absent = missing()
    if not absent:
        return
    command = f"apt-get install -y {' '.join(PACKAGES)}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        names = ", ".join(str(path) for path in absent)
        raise BrowserMissingError(f"{names} not installed; install them with: sudo {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends"]):
        args = step + list(PACKAGES) if step[1] == "install" else step
        subprocess.run(args, check=True, env=env, timeout=timeout, stdout=subprocess.DEVNULL)
    if still := missing():
        raise BrowserMissingError(f"{command} ran, but {', '.join(map(str, still))} is missing")


@contextmanager
def headless_chromium(width: int = 1440, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile, closed (and its profile removed) on exit."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    # An explicit driver path: Selenium then never looks for (or downloads) one itself.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_text(browser: webdriver.Chrome, needles: Iterable[str], timeout: float = 30) -> str:
    """Poll the rendered page (after its scripts ran) until its text holds every needle."""
    wanted = list(needles)
    return poll_until(
        lambda: str(browser.find_element(By.TAG_NAME, "body").text),
        lambda text: all(needle in text for needle in wanted),
        timeout=timeout,
        what=f"page {browser.current_url} showing {wanted}",
    )


def screenshot(browser: webdriver.Chrome, name: str) -> Path:
    """Save what the browser shows as ``SCREENSHOTS/name`` (a PNG) and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    assert browser.save_screenshot(str(path)), f"no screenshot written to {path}"
    assert path.read_bytes().startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    return path
