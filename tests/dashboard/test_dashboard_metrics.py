"""The Metrics page's charts, the notifications setting and the danger zone, in headless Chromium
against one real loopback node sampling every second."""

import pytest

from skulk.testing.cluster import LocalCluster, wait_until
from tests.dashboard.conftest import CHROMIUM, screenshot

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'").expect
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing: apt-get install chromium", allow_module_level=True)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("dash-metrics"), extra_env={
        "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false", "SKULK_METRICS__SAMPLE_SECONDS": "1"})
    try:
        n = cluster.add_node("solo", extra_args=["--no-worker"], namespace="skulk-dash-metrics")
        cluster.wait_ready(n, timeout=60)
        yield n
    finally:
        cluster.stop_all()


def test_metrics_page_draws_charts_of_the_node(node, page):
    wait_until(lambda: len(node.get("/v1/metrics/history")["samples"]) >= 3, 20, message="samples")
    page.goto(f"{node.url}/history")
    expect(page.locator('.nav a[data-page="history"]')).to_have_attribute("aria-current", "page")
    cpu = page.locator('[data-chart="cpu"]')
    expect(cpu).to_be_visible()
    expect(cpu.locator("path.chart-line")).to_have_count(1)
    assert int(cpu.get_attribute("data-points")) >= 1  # averaged per step (range / 240)
    assert cpu.locator("path.chart-line").get_attribute("d").startswith("M")
    expect(page.locator('[data-chart="memory"] .chart-last')).to_contain_text("B")
    expect(page.locator("[data-chart]")).to_have_count(7)
    page.locator('.segmented button:has-text("15m")').click()
    expect(page.locator('.segmented button:has-text("15m")')).to_have_attribute("aria-checked", "true")
    screenshot(page, "metrics")


def test_settings_webhook_and_danger_zone(node, page):
    page.goto(f"{node.url}/settings")
    url = "http://127.0.0.1:9/hook"
    page.locator("[data-webhook-url]").fill(url)
    page.locator("[data-save-webhook]").click()
    expect(page.locator(".notifications-card .save-status")).to_contain_text("Saved")
    assert wait_until(lambda: node.get("/config")["effective"]["notifications"]["webhook_url"] == url, 10)

    page.locator("[data-purge-metrics]").click()
    page.locator(".danger-zone [data-confirm]").click()  # nothing happens before the confirm
    expect(page.locator("[data-purge-result]")).to_contain_text("history cleared on 1 node(s)")
    assert len(node.get("/v1/metrics/history")["samples"]) <= 2
    screenshot(page, "settings-danger-zone")
