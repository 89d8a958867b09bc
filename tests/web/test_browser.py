"""The status page in a real headless Chromium: what a person sees after ``demo``.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); a
missing browser fails the test rather than skipping it. The screenshot is kept in
``test-artifacts/status-page.png``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from exporter.tools.demo import DEMO_CONFIG
from tests.helpers import ROOT, ExporterProcess, event, require_binary

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromedriver = require_binary("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = require_binary("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1500,1000", "--lang=en-US"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def rows(driver: webdriver.Chrome, table: str) -> list[str]:
    return [r.text for r in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")]


def row_with(driver: webdriver.Chrome, table: str, *texts: str) -> str:
    found = [r for r in rows(driver, table) if all(t in r for t in texts)]
    assert len(found) == 1, f"no single row of #{table} with {texts}: {rows(driver, table)}"
    return found[0]


def after_demo(exporter_process: Callable[..., ExporterProcess],
               tmp_path: Path) -> ExporterProcess:
    """An exporter with the demo's configuration, fed the demo's day of exports."""
    config = tmp_path / "demo.yml"
    config.write_text(DEMO_CONFIG)
    exp = exporter_process("--config.file", str(config), "--timezone", "Europe/Berlin")
    exp.start()
    demo = subprocess.run(
        [sys.executable, "-m", "exporter", "demo", "--url", exp.url, "--rate", "0",
         "--seed", "7", "--timezone", "Europe/Berlin"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert demo.returncode == 0, demo.stderr
    assert "rejected 0, failed 0" in demo.stdout
    return exp


def test_status_page_after_demo(
    browser: webdriver.Chrome, exporter_process: Callable[..., ExporterProcess],
    tmp_path: Path,
) -> None:
    exp = after_demo(exporter_process, tmp_path)

    browser.get(exp.url + "/")
    assert browser.title == "CleverTap exports: status"
    header = browser.find_element(By.TAG_NAME, "header").text
    assert "clevertap-export-exporter" in header and "version" in header
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR,
                                                                             "header nav a")}
    assert links["/metrics"] == exp.url + "/metrics"
    assert links["API description"] == exp.url + "/openapi.json"

    # One row per export, with the state a person would act on.
    states = [s.text for s in browser.find_elements(By.CSS_SELECTOR, "#exports .state")]
    assert states[0] == "never seen"
    assert sorted(set(states)) == ["late", "never seen", "ok", "running", "stuck", "too fast"]
    assert len(states) == 9  # 8 simulated exports and one declared that never reported

    never = row_with(browser, "exports", "never seen")
    assert "Azure profiles (not set up yet)" in never and "azure_blob_storage" in never
    assert "declared, no webhook received yet" in never

    late = row_with(browser, "exports", "late")
    assert "Events to the Azure warehouse" in late and "12h" in late
    assert "CET" in late or "CEST" in late  # the absolute time is in the configured zone
    assert "ago" in late and "no completion for 20h" in late

    running = row_with(browser, "exports", "running")
    assert "Events to BigQuery staging" in running and "8h" in running
    assert "12m ago" in running  # in flight since, as "x ago"

    stuck = row_with(browser, "exports", "stuck")
    assert "Staging profiles" in stuck and "in flight for 5h" in stuck

    fast = row_with(browser, "exports", "too fast")
    assert "6s" in fast and "min_runtime 5m" in fast
    assert len([r for r in rows(browser, "exports") if r.startswith("ok")]) == 4

    # The last webhooks: CleverTap's test ping, accepted events, the redelivery.
    events = rows(browser, "events")
    assert "duplicate" in events[0]  # the demo ends with one redelivery
    assert any("test" in r and "200" in r for r in events)
    assert sum("accepted" in r for r in events) >= 30
    summary = browser.find_element(By.ID, "summary").text
    assert "late 1" in summary and "running 1" in summary

    # A screenshot for people (and the README): the exports and the newest webhooks.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1500, min(int(height) + 40, 1300))
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "status-page.png"))
    assert (ARTIFACTS / "status-page.png").stat().st_size > 10_000


def test_status_page_refreshes_itself(
    browser: webdriver.Chrome, exporter_process: Callable[..., ExporterProcess],
) -> None:
    exp = exporter_process()
    exp.start()
    browser.get(exp.url + "/?refresh=1")
    assert browser.find_element(By.ID, "exports-empty").text.startswith("No exports yet")
    assert "No webhook received" in browser.find_element(By.ID, "events-empty").text
    exp.post(event(42, "Initiated", time.time() - 90, partner="GCS", frequency="Every 8 hours"))
    try:
        WebDriverWait(browser, 10).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#exports tbody tr"))
    except TimeoutException:  # pragma: no cover - the message says what went wrong
        pytest.fail("the page did not refresh itself within 10 s")
    row = row_with(browser, "exports", "running")
    assert "google_cloud_storage" in row and "1m 30s ago" in row
    assert "accepted" in rows(browser, "events")[0]


def _overflow(driver: webdriver.Chrome) -> list[str]:
    """What sticks out of the window sideways: the page itself, or a cell of either table."""
    return list(driver.execute_script("""
        const width = document.documentElement.clientWidth, out = [];
        if (document.documentElement.scrollWidth > width) out.push('page scrolls sideways');
        for (const el of document.querySelectorAll('th, td, .banner')) {
            const r = el.getBoundingClientRect();
            if (r.right > width + 1) out.push(el.tagName + ' ' + el.textContent.slice(0, 40));
        }
        return out;"""))


@pytest.mark.parametrize(("width", "height", "name"), [
    (1280, 900, "status-page-1280.png"), (390, 844, "status-page-phone.png"),
], ids=["1280px", "phone"])
def test_status_page_fits_the_window(
    browser: webdriver.Chrome, exporter_process: Callable[..., ExporterProcess],
    tmp_path: Path, width: int, height: int, name: str,
) -> None:
    """Every column of the demo's exports fits 1,280 pixels without scrolling sideways; on a
    phone each row is a card of labelled cells, one above the other."""
    exp = after_demo(exporter_process, tmp_path)
    browser.set_window_size(width, height)
    browser.get(exp.url + "/?refresh=0")
    assert _overflow(browser) == []
    first = browser.find_elements(By.CSS_SELECTOR, "#exports tbody tr:first-child td")
    state, detail = first[0].rect, first[-1].rect
    if width >= 1280:
        headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#exports th")]
        assert headers[-1] == "Detail" and len(headers) == len(first)
        assert detail["y"] == state["y"]  # one line of cells
    else:
        assert detail["x"] == state["x"] and detail["y"] > state["y"]  # stacked
        # The headers give way to each cell's own label.
        assert not browser.find_element(By.CSS_SELECTOR, "#exports thead").is_displayed()
        assert first[-1].get_attribute("data-label") == "Detail"
    ARTIFACTS.mkdir(exist_ok=True)
    full = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(int(full) + 140, 4000))
    assert browser.save_screenshot(str(ARTIFACTS / name))


def test_status_page_links_resolve(exporter_process: Callable[..., ExporterProcess]) -> None:
    exp = exporter_process()
    exp.start()
    with urllib.request.urlopen(exp.url + "/", timeout=10) as r:
        page = r.read().decode()
    links = re.findall(r'<nav>(.*?)</nav>', page, re.S)[0]
    hrefs = re.findall(r'href="([^"]+)"', links)
    assert len(hrefs) >= 4
    for href in hrefs:
        assert href.startswith("/"), f"{href}: the page links only to the exporter's own routes"
        with urllib.request.urlopen(exp.url + href, timeout=10) as r:
            assert r.status == 200, href
