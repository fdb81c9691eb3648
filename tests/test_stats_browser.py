"""The stats page in a real headless browser (Debian's chromium, driven by Selenium
through chromedriver): the page renders one table per proxy, refreshes itself, and its
admin form puts a server in maintenance, which every worker obeys at once.

The screenshot is kept in $FASTLB_ARTIFACTS (default: test-artifacts/ in the checkout)."""
from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import pytest

from conftest import HTTP_DEFAULTS, free_port, stats_cli as cli, wait_until

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromedriver not installed")
ARTIFACTS = pathlib.Path(os.environ.get("FASTLB_ARTIFACTS",
                                        pathlib.Path(__file__).parent.parent / "test-artifacts"))


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="fastlb-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,900",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(15)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def settled(read):
    """``read()`` retried while the page is being replaced by a refresh."""
    from selenium.common.exceptions import (NoSuchElementException,
                                            StaleElementReferenceException, WebDriverException)

    def attempt():
        try:
            return read()
        except (NoSuchElementException, StaleElementReferenceException):
            return None
        except WebDriverException as exc:
            # Chromium's wording for an element whose page was replaced meanwhile
            if "does not belong to the document" in str(exc):
                return None
            raise
    return attempt


def test_stats_page_in_chromium(fastlb, http_backends, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    a, b = http_backends("s1"), http_backends("s2")
    port, stats_port, sock = free_port(), free_port(), tmp_path / "stats.sock"
    fastlb(f"""
    global
        stats socket {sock} level admin
    {HTTP_DEFAULTS}
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        server s1 127.0.0.1:{a.port} check inter 200ms
        server s2 127.0.0.1:{b.port}
    listen st
        bind 127.0.0.1:{stats_port}
        stats enable
        stats uri /stats
        stats refresh 1s
        stats show-legends
        stats admin if LOCALHOST
    """, workers=4, ports=[port, stats_port])
    url = f"http://127.0.0.1:{stats_port}/stats"
    browser.get(url)
    tables = browser.find_elements(By.CSS_SELECTOR, "table.tbl")
    assert [t.get_attribute("data-proxy") for t in tables] == ["fe", "be", "st"]
    s1 = browser.find_element(By.CSS_SELECTOR, "#px-be tr[data-sv='s1']")
    assert s1.get_attribute("class") == "active_up"
    assert browser.find_element(By.CSS_SELECTOR, "#px-be tr[data-sv='s2']") \
        .get_attribute("class") == "active_no_check"
    # auto-refresh: the Refresh header makes the browser load the page again
    first = browser.find_element(By.ID, "generated").text
    generated = settled(lambda: browser.find_element(By.ID, "generated").text)
    wait_until(lambda: generated() not in (None, first), timeout=5,
               message="the page to refresh itself")
    # the admin form (on a page that does not reload under the clicks): tick s1, choose
    # maint, apply
    browser.get(url + ";norefresh")
    browser.find_element(By.CSS_SELECTOR, "#px-be input[name='s'][value='s1']").click()
    Select(browser.find_element(By.ID, "action-be")).select_by_value("maint")
    browser.find_element(By.ID, "apply-be").click()
    wait_until(lambda: browser.current_url.startswith(url + ";st=DONE"), timeout=5,
               message="the 303 to ;st=DONE")
    s1_row = settled(lambda: (browser.find_element(By.CSS_SELECTOR, "#px-be tr[data-sv='s1']")
                              .get_attribute("data-status"),
                              browser.find_element(By.CSS_SELECTOR, "#px-be tr[data-sv='s1']")
                              .get_attribute("class"),
                              browser.find_element(By.ID, "action-status").text))
    wait_until(lambda: s1_row() is not None, timeout=5, message="the page after the POST")
    status, css, note = s1_row()
    assert (status, css) == ("MAINT", "maintain") and "DONE" in note
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "stats-page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    # every worker obeys: no request reaches s1 now
    import urllib.request
    before = len(a.requests)
    for _ in range(40):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            assert answer.status == 200
    assert len(a.requests) == before
    assert "MAINT" in cli(sock, "show stat").split("\nbe,s1,")[1].split("\n")[0]
    # and the next refresh shows a change made from the CLI
    assert cli(sock, "set server be/s2 state drain") == "\n"
    s2_status = settled(lambda: browser.find_element(By.CSS_SELECTOR, "#px-be tr[data-sv='s2']")
                        .get_attribute("data-status"))
    wait_until(lambda: s2_status() == "DRAIN", timeout=5,
               message="the refreshed page to show s2 draining")
