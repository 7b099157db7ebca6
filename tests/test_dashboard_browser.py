"""The dashboard in a real browser (headless Chromium driven by Selenium), against a real
``lightbus-sync dashboard`` process and a real ``lightbus-sync run`` process: every page
loads, a dead letter replayed with the action token is handled by the runner, the action
is refused without the token, a ``<script>`` parameter is inert text, and the streams
page's screenshots are saved (to docs/img/ for the docs when
``LIGHTBUS_UPDATE_SCREENSHOTS=1``, else to the test's temporary folder).

Skipped, saying why, where chromium and chromedriver are not installed."""

from __future__ import annotations

import json
import os
import time

import pytest

import lightbus_sync
from dashboard_apps.shop_api import DashShopApi  # noqa: F401  (defines the API)
from dashboard_apps.support import APPS_DIR, REPO_ROOT, TOKEN, browser, dashboard_process  # noqa: F401
from runner_apps.harness import fast_config, run_process, wait_until  # noqa: F401

STREAM = "dash.shop.*:stream"
DEAD = "{" + STREAM + "}:dead"
PAYLOAD = '<script>window.__pwned = 1; document.title = "pwned"</script>'
DOCS_IMG = REPO_ROOT / "docs" / "img"


@pytest.fixture
def img_dir(tmp_path):
    """Where screenshots go: docs/img/ when LIGHTBUS_UPDATE_SCREENSHOTS=1 (to refresh the
    docs' pictures), else a temporary folder, so a test run leaves the tree unchanged."""
    return DOCS_IMG if os.environ.get("LIGHTBUS_UPDATE_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
def shop(redis7_server, run_process):  # noqa: F811
    """Orders 1-3 fired (3 carrying the script payload), handled by a real runner
    process, order 2 dead-lettered; yields (redis URL, client, runner process)."""
    redis7_server.flushall()
    url = redis7_server.url
    client = redis7_server.client()
    client.set("fail:2", 1)
    bus = lightbus_sync.create(redis_url=url, service_name="dash-test", config=fast_config())
    try:
        for order_id, note in ((1, "first"), (2, "second"), (3, PAYLOAD)):
            bus.dash.shop.order_placed.fire(order_id=order_id, note=note)
    finally:
        bus.close()
    env = {"PYTHONPATH": f"{APPS_DIR}:{REPO_ROOT}"}
    runner = run_process("shop_bus", url, config=fast_config(), env=env).wait_ready()
    wait_until(lambda: client.xlen(DEAD) == 1 and sorted(client.lrange("handled", 0, -1)) == [b"1", b"3"],
               timeout=20, what="orders 1 and 3 handled, order 2 dead-lettered")
    try:
        yield url, client, runner
    finally:
        client.close()


def _wait_text(driver, css: str, text: str, timeout: float = 15):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if text in e.text), None),
        message=f"no {css} containing {text!r}")


def test_every_page_loads_and_the_script_payload_is_text(shop, dashboard_process, browser, img_dir):  # noqa: F811
    from selenium.webdriver.common.by import By

    url, client, runner = shop
    dash = dashboard_process(url, "--bus", "shop_bus", env={"LIGHTBUS_DASHBOARD_TOKEN": TOKEN})

    browser.get(dash.url)
    assert browser.title == "Streams · lightbus_sync"
    row = _wait_text(browser, "#streams tbody tr", STREAM)
    assert "dash.shop" in row.text and "held by dash-billing" in row.text
    assert row.find_elements(By.CSS_SELECTOR, "td")[6].text == "1"  # dead letters

    # a group whose service is down falls behind while more events come: it holds the
    # trim point, and its lag grows in the chart (sampled every 0.2 s here)
    client.xgroup_create(STREAM, "reports-summary", id="0")
    bus = lightbus_sync.create(redis_url=url, service_name="dash-test", config=fast_config())
    try:
        for order_id in range(4, 12):
            bus.dash.shop.order_placed.fire(order_id=order_id, note="more")
            bus.dash.mail.mail_sent.fire(to=f"customer{order_id}@example.com")
            time.sleep(0.25)
    finally:
        bus.close()
    browser.get(dash.url)
    row = _wait_text(browser, "#streams tbody tr", STREAM)
    assert "held by reports-summary" in row.text
    _wait_text(browser, "#streams tbody tr", "dash.mail.*:stream")
    img_dir.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(img_dir / "dashboard-streams.png"))

    browser.get(dash.url + "groups")
    row = _wait_text(browser, "#groups tbody tr", "reports-summary")
    assert row.find_elements(By.CSS_SELECTOR, "td")[5].text == "11"  # lag: every entry
    lines = browser.find_elements(By.CSS_SELECTOR, "#groups svg polyline")
    assert len(lines) == 2  # one chart per group
    assert browser.find_element(By.CSS_SELECTOR, "#groups svg title").get_attribute("textContent").startswith("lag over")
    assert browser.save_screenshot(str(img_dir / "dashboard-groups.png"))

    browser.get(dash.url + "events?api=dash.shop")
    row = _wait_text(browser, "#events tbody tr", "order_id")
    assert browser.title == "Events · lightbus_sync"
    values = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#events code.value")]
    assert json.dumps(PAYLOAD) in values  # shown as the text it is (JSON)
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.find_elements(By.TAG_NAME, "script") == []

    browser.get(dash.url + "dead-letters")
    row = _wait_text(browser, "#dead-letters tbody tr", "dash-billing")
    assert "billing" in row.text and "order 2 cannot be billed" in row.text and "handler marked permanent" in row.text
    row.find_element(By.CSS_SELECTOR, "td a").click()
    table = _wait_text(browser, "#dead-letter", "listener")
    assert "order 2 cannot be billed" in table.text and "attempts" in table.text
    assert browser.execute_script("return typeof window.__pwned") == "undefined"


def test_replay_with_the_token_is_handled_and_refused_without(shop, dashboard_process, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    url, client, runner = shop
    read_only = dashboard_process(url)
    acting = dashboard_process(url, env={"LIGHTBUS_DASHBOARD_TOKEN": TOKEN})

    # read-only: no action links, and the confirmation page refuses
    browser.get(read_only.url + "dead-letters")
    row = _wait_text(browser, "#dead-letters tbody tr", "dash-billing")
    assert row.find_elements(By.LINK_TEXT, "replay") == []
    dead_id = client.xrange(DEAD)[0][0].decode()
    browser.get(acting.url + "dead-letters")
    link = _wait_text(browser, "#dead-letters a", "replay").get_attribute("href")
    assert dead_id in link
    browser.get(link.replace(acting.url, read_only.url))
    assert "read-only" in _wait_text(browser, "#message", "read-only").text

    # with the token configured but a wrong one typed: refused, nothing replayed
    client.delete("fail:2")
    browser.get(link)
    browser.find_element(By.NAME, "token").send_keys("not-the-token-at-all")
    browser.find_element(By.ID, "confirm").click()
    assert "wrong action token" in _wait_text(browser, "#message", "wrong").text
    assert client.xlen(DEAD) == 1 and b"2" not in client.lrange("handled", 0, -1)

    # the right token: replayed, and the runner process handles it
    browser.get(link)
    browser.find_element(By.NAME, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "confirm").click()
    assert f"Replayed {dead_id}" in _wait_text(browser, "#message", "Replayed").text
    wait_until(lambda: b"2" in client.lrange("handled", 0, -1), timeout=20, what="the runner handling order 2")
    assert client.xlen(DEAD) == 0
    browser.get(acting.url + "dead-letters")
    assert "No dead letters" in _wait_text(browser, "main p", "No dead letters").text
    assert runner.proc.poll() is None
