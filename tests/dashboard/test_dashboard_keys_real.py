"""The key flow end to end in headless Chromium on a real node started with an admin key:
401 -> the prompt -> enter the key -> pages work; create a key (shown once, it works), revoke it."""

import httpx
import pytest

from skulk.testing.cluster import LocalCluster, wait_until
from tests.dashboard.conftest import CHROMIUM, screenshot

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'").expect
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing: apt-get install chromium", allow_module_level=True)

pytestmark = pytest.mark.timeout(180)
ADMIN_KEY = "sk-skulk-dashtest.Zm9yLWRhc2hib2FyZC10ZXN0cy1vbmx5LTAxMjM0NQ"


def status(node, path: str, key: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(node.url + path, headers=headers, timeout=10, trust_env=False).status_code


@pytest.fixture(scope="module")
def locked_node(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("dash-keys"),
                           extra_env={"SKULK_DEFAULT_MODEL__AUTO_PLACE": "false", "SKULK_AUTH__ADMIN_KEY": ADMIN_KEY})
    try:
        node = cluster.add_node("keeper", extra_args=["--no-worker"], namespace="skulk-dash-keys", bootstrap=[])
        cluster.wait_ready(node, timeout=60)
        # The admin key is registered through the master: until then a loopback node is still open.
        wait_until(lambda: status(node, "/state") == 401, 30, 0.2, "the node requires a key")
        yield node
    finally:
        cluster.stop_all()


def test_key_prompt_then_create_use_and_revoke_a_key_on_a_real_node(locked_node, page):
    node = locked_node
    page.goto(f"{node.url}/keys")
    prompt = page.locator("dialog.key-prompt")
    expect(prompt).to_be_visible()
    prompt.locator('input[type="password"]').fill(ADMIN_KEY)
    prompt.get_by_role("button", name="Use key").click()
    expect(prompt).to_have_count(0)
    expect(page.locator("table.keys")).to_be_visible()
    expect(page.locator("#conn")).to_have_text("live")  # the /state poll carries the key too

    page.locator("[data-new-key]").click()
    dialog = page.locator("dialog.key-dialog")
    dialog.locator('[name="name"]').fill("browser-made")
    dialog.locator('[name="expiry_unit"]').select_option("hours")
    dialog.locator('[name="expiry_amount"]').fill("1")
    dialog.get_by_role("button", name="Create key").click()
    shown = dialog.locator("input.key-once")
    expect(shown).not_to_have_value("")
    new_key = shown.input_value()
    expect(dialog).to_contain_text("you will not see it again")
    assert status(node, "/v1/models", new_key) == 200  # a working user key
    assert status(node, "/v1/keys", new_key) == 403  # and not an admin one
    dialog.get_by_role("button", name="Done").click()
    row = page.locator("tr", has_text="browser-made")
    expect(row).to_have_count(1)
    assert new_key not in page.locator("#view").inner_text()
    screenshot(page, "keys-real")

    row.locator("[data-revoke]").click()
    row.locator("[data-confirm]").click()
    expect(page.locator("tr", has_text="browser-made")).to_have_count(0)
    assert status(node, "/v1/models", new_key) == 401

    page.locator('.nav a[data-page="projects"]').click()
    expect(page.locator(".project-list")).to_contain_text("No projects yet.")
    page.reload()  # the /projects deep link is served, and the remembered key needs no second prompt
    expect(page.locator(".project-list")).to_contain_text("No projects yet.")
    expect(page.locator("dialog.key-prompt")).to_have_count(0)
