"""The dashboard in headless Chromium against real loopback nodes (see conftest.py)."""

import json

import httpx
import pytest
import yaml

from skulk.testing.cluster import wait_until
from tests.dashboard.conftest import BASE_PATH, CHROMIUM, DEFAULT_MODEL, HAVE_SUPERVISOR, screenshot
from tests.dashboard.proxy import PrefixProxy

# Skip before any node starts when the browser side is missing.
expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]' (no browser download "
    "needed, the tests use Debian's /usr/bin/chromium)").expect
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing: apt-get install chromium (scripts/install.sh --test does)",
                allow_module_level=True)

pytestmark = pytest.mark.timeout(240)


def instances(node):
    return node.get("/state")["instances"]


def delete_all_instances(node):
    for instance_id in instances(node):
        httpx.delete(f"{node.url}/instance/{instance_id}", timeout=10, trust_env=False)
    wait_until(lambda: not instances(node), 20, 0.2, "instances deleted")


def place(node, min_nodes=1):
    resp = node.post("/place_instance", {"model_id": DEFAULT_MODEL, "min_nodes": min_nodes})
    assert resp.status_code == 200, resp.text
    return wait_until(lambda: next(iter(instances(node)), None), 20, 0.2, "instance placed")


def test_cluster_page_shows_both_nodes_and_the_master(dash, page):
    page.goto(f"{dash.other.url}/cluster")
    cards = page.locator(".node-card")
    expect(cards).to_have_count(2)
    master_name = dash.names[dash.master.get("/node_id")]
    master_card = page.locator(".node-card.is-master")
    expect(master_card).to_have_count(1)
    expect(master_card.locator(".node-name")).to_have_text(master_name)
    expect(master_card.locator("[data-master]")).to_be_visible()
    expect(page.locator(".node-card [data-health]")).to_have_count(2)
    expect(page.locator(".node-card").first).to_contain_text("Memory")
    expect(page.locator("svg.topology .topo-node")).to_have_count(2)
    expect(page.locator("svg.topology .topo-edge")).to_have_count(1)
    expect(page.locator(".summary")).to_contain_text(f"master {master_name}")
    screenshot(page, "cluster")


def test_place_preview_and_delete_from_the_models_page(dash, page):
    names = sorted(dash.names.values())
    master_id = dash.master.get("/node_id")
    page.goto(f"{dash.other.url}/models")
    page.locator(f'button[data-place="{DEFAULT_MODEL}"]').click()
    dialog = page.locator("dialog.placement-dialog")
    expect(dialog).to_be_visible()
    # Pipeline/MlxRing on 1 and 2 nodes, and llama.cpp (LlamaRpc) on 1: the default model has a GGUF
    expect(dialog.locator('li[data-fits="true"]')).to_have_count(3)
    expect(dialog.locator('li[data-fits="false"] .preview-error').first).to_contain_text("RDMA")
    expect(dialog.locator(".verdict")).to_have_attribute("data-fits", "true")

    dialog.locator(f'.pill[data-node-id="{master_id}"]').click()  # exclude the master node
    expect(dialog.locator(f'.pill[data-node-id="{master_id}"]')).to_have_attribute("aria-pressed", "false")
    expect(dialog.locator('li[data-fits="true"]')).to_have_count(2)
    dialog.locator('[name="min_nodes"]').fill("2")
    expect(dialog.locator(".verdict")).to_have_attribute("data-fits", "false")
    dialog.locator(f'.pill[data-node-id="{master_id}"]').click()  # and back in
    expect(dialog.locator('li[data-fits="true"]')).to_have_count(3)
    for name in names:
        expect(dialog.locator(".verdict")).to_contain_text(name)
    screenshot(page, "placement-dialog")

    dialog.get_by_role("button", name="Place", exact=True).click()
    expect(dialog).to_have_count(0)
    card = page.locator(f'.instance-card[data-model-id="{DEFAULT_MODEL}"]')
    expect(card).to_have_count(1)
    expect(card.locator("tbody tr")).to_have_count(2)
    expect(card.locator("tbody")).to_contain_text(names[0])
    expect(card.locator("tbody")).to_contain_text(names[1])
    screenshot(page, "models-with-instance")

    card.get_by_role("button", name="Delete").click()
    expect(page.locator(".instance-card")).to_have_count(0)
    expect(page.locator(".instance-list")).to_contain_text("No instances")
    assert instances(dash.other) == {}


def test_place_errors_are_shown_plainly(dash, page):
    page.goto(f"{dash.other.url}/models")
    page.locator(f'button[data-place="{DEFAULT_MODEL}"]').click()
    dialog = page.locator("dialog.placement-dialog")
    dialog.locator('[name="min_nodes"]').fill("5")
    dialog.get_by_role("button", name="Place", exact=True).click()
    expect(dialog.locator('.error[role="alert"]')).to_contain_text("min_nodes=5")
    assert instances(dash.other) == {}


def save_config(page) -> None:
    """The config form's Save (the Notifications section has a Save of its own)."""
    page.locator("button:not([data-save-webhook])", has_text="Save").click()


def test_settings_show_the_config_and_save_round_trips(dash, page):
    config_file = dash.other.home / "skulk.yaml"
    page.goto(f"{dash.other.url}/settings")
    expect(page.locator("[data-config-path]")).to_have_text(str(config_file))
    page.locator('details[data-section="tracing"] > summary').click()
    page.locator('[name="tracing.retention_days"]').fill("7")
    save_config(page)
    expect(page.locator("div.save-status")).to_contain_text("Saved")
    expect(page.locator("div.save-status")).to_contain_text("No restart needed")
    assert yaml.safe_load(config_file.read_text()) == {"tracing": {"retention_days": 7}}

    page.reload()
    expect(page.locator('[name="tracing.retention_days"]')).to_have_value("7")
    page.locator('[name="api_port"]').fill("70000")
    save_config(page)
    expect(page.locator('div.save-status[role="alert"]')).to_contain_text("api_port")
    expect(page.locator('.field[data-key="api_port"]')).to_have_class("field invalid")
    assert yaml.safe_load(config_file.read_text()) == {"tracing": {"retention_days": 7}}

    page.get_by_role("tab", name="JSON").click()
    expect(page.locator("textarea.json-editor")).to_have_value(
        json.dumps({"tracing": {"retention_days": 7}, "api_port": 70000}, indent=2))
    screenshot(page, "settings")
    config_file.unlink()


def test_deep_links_and_client_side_navigation(dash, page):
    for name in ("cluster", "models", "chat", "settings"):
        page.goto(f"{dash.other.url}/{name}")
        expect(page.locator(f'#view[data-page="{name}"]')).to_be_attached()
        expect(page.locator(f'.nav a[data-page="{name}"]')).to_have_attribute("aria-current", "page")
    page.locator('.nav a[data-page="models"]').click()
    expect(page).to_have_url(f"{dash.other.url}/models")
    expect(page.locator("table.catalog")).to_be_visible()
    page.go_back()
    expect(page.locator('#view[data-page="settings"]')).to_be_attached()
    for path in ("/v1/nope", "/nope"):
        resp = httpx.get(dash.other.url + path, headers={"Accept": "text/html"}, trust_env=False)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == 404


def test_dark_theme_follows_the_system_and_the_toggle_is_remembered(dash, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="dark")
    try:
        tab = context.new_page()
        tab.goto(f"{dash.other.url}/cluster")
        html = tab.locator("html")
        expect(html).to_have_attribute("data-theme", "dark")
        expect(tab.locator(".node-card")).to_have_count(2)
        screenshot(tab, "cluster-dark")
        tab.locator("#theme-toggle").click()
        expect(html).to_have_attribute("data-theme", "light")
        tab.reload()
        expect(html).to_have_attribute("data-theme", "light")
        tab.locator("#theme-toggle").click()
        expect(html).to_have_attribute("data-theme", "dark")
        tab.goto(f"{dash.other.url}/models")
        expect(html).to_have_attribute("data-theme", "dark")
        screenshot(tab, "models-dark")
    finally:
        context.close()


def _sse(*events: str) -> str:
    return "".join(f"{e}\n\n" for e in events)


def _chunk(delta: dict, finish=None) -> str:
    body = {"id": "cmd-1", "object": "chat.completion.chunk", "created": 0, "model": DEFAULT_MODEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return "data: " + json.dumps(body)


MOCK_ANSWERS = [
    (200, "text/event-stream", _sse(": keep-alive", ": command_id cmd-1", _chunk({"role": "assistant", "content": "Hel"}),
                                    _chunk({"content": "lo there!"}), _chunk({}, "stop"), "data: [DONE]")),
    (200, "text/event-stream", _sse(": keep-alive", _chunk({"content": "Par"}),
                                    'data: {"error": {"message": "Runner crashed mid-answer", "code": 500}}',
                                    "data: [DONE]")),
    (404, "application/json", json.dumps({"error": {"message": "No instance found for model x", "type": "Not Found",
                                                    "param": "model", "code": 404}})),
]


def test_chat_streams_sse_and_shows_errors_with_a_mocked_api(dash, page):
    """The page's SSE handling, independent of serving: answers come from page.route."""
    answers = list(MOCK_ANSWERS)
    sent = []

    def fulfil(route):
        sent.append(json.loads(route.request.post_data))
        status, kind, body = answers.pop(0)
        route.fulfill(status=status, content_type=kind, body=body)

    place(dash.other)
    try:
        page.route("**/v1/chat/completions", fulfil)
        page.goto(f"{dash.other.url}/chat")
        expect(page.locator(f'select option[value="{DEFAULT_MODEL}"]')).to_have_count(1)
        box = page.get_by_label("Message")
        box.fill("Hi")
        box.press("Enter")
        expect(page.locator(".bubble.assistant .bubble-text").last).to_have_text("Hello there!")
        assert sent[0]["stream"] is True and sent[0]["messages"] == [{"role": "user", "content": "Hi"}]
        box.fill("Again")
        box.press("Enter")
        expect(page.locator(".bubble.assistant .error").last).to_contain_text("Runner crashed mid-answer")
        assert [m["content"] for m in sent[1]["messages"]] == ["Hi", "Hello there!", "Again"]
        box.fill("Third")
        box.press("Enter")
        expect(page.locator(".bubble.assistant .error").last).to_contain_text("No instance found for model x")
        page.reload()  # the conversation was kept in localStorage
        expect(page.locator(".conversations li")).to_have_count(1)
        expect(page.locator(".bubble")).to_have_count(6)
        screenshot(page, "chat-mocked")
    finally:
        delete_all_instances(dash.other)


@pytest.mark.skipif(not HAVE_SUPERVISOR, reason="serving is not available yet: skulk.runner.supervisor does not "
                    "exist, so nodes cannot run models (the nodes run with --no-worker)")
def test_chat_streams_a_real_answer(dash, page):
    place(dash.other)
    try:
        def ready():
            doc = dash.other.get("/state")
            statuses = [next(iter(s)) for s in doc["runners"].values()]
            return statuses and all(s == "RunnerReady" for s in statuses)
        wait_until(ready, 120, 0.5, "runners of the default model are RunnerReady")
        page.goto(f"{dash.other.url}/chat")
        expect(page.locator(f'select option[value="{DEFAULT_MODEL}"]')).to_have_count(1)
        page.get_by_label("Message").fill("Say hello in five words.")
        page.get_by_label("Message").press("Enter")
        answer = page.locator(".bubble.assistant").last
        expect(answer.locator(".bubble-text")).not_to_be_empty(timeout=60_000)
        expect(answer).not_to_have_class("bubble assistant streaming", timeout=60_000)
        expect(answer.locator(".error")).to_have_count(0)
        screenshot(page, "chat")
    finally:
        delete_all_instances(dash.other)


def test_works_behind_a_prefix_stripping_proxy(dash, page):
    node = dash.prefixed
    index = httpx.get(node.url + "/", headers={"Accept": "text/html"}, trust_env=False).text
    if f'<base href="{BASE_PATH}/">' not in index:
        pytest.skip("skulk/app.py does not pass settings.dashboard_base_path to create_app yet")
    proxy = PrefixProxy(node.api_port, BASE_PATH).start()
    try:
        origin = f"http://127.0.0.1:{proxy.port}{BASE_PATH}"
        page.goto(f"{origin}/cluster")
        expect(page.locator(".node-card")).to_have_count(1)
        expect(page.locator(".node-card [data-master]")).to_be_visible()
        page.locator('.nav a[data-page="models"]').click()
        expect(page).to_have_url(f"{origin}/models")
        page.locator(f'button[data-place="{DEFAULT_MODEL}"]').click()
        # the lone proxied node runs --no-worker: every preview is refused, saying why
        expect(page.locator('dialog li[data-fits="false"]').first).to_contain_text("without a worker")
        expect(page.locator('dialog li[data-fits="true"]')).to_have_count(0)
        page.get_by_role("button", name="Cancel").click()
        page.goto(f"{origin}/settings")
        expect(page.locator("[data-config-path]")).to_have_text(str(node.home / "skulk.yaml"))
        page.goto(f"{origin}/chat")
        expect(page.locator('#view[data-page="chat"]')).to_be_attached()
        screenshot(page, "proxied-chat")
        outside = [p for p in proxy.seen if not p.startswith(BASE_PATH + "/")]
        assert not outside, f"requests outside {BASE_PATH}: {outside}"
        assert any(p.startswith(f"{BASE_PATH}/state") for p in proxy.seen)
        assert any(p.startswith(f"{BASE_PATH}/assets/js/") for p in proxy.seen)
    finally:
        proxy.stop()


def test_a_cluster_without_a_secret_shows_a_banner(dash, page):
    page.goto(f"{dash.other.url}/cluster")
    banner = page.locator("#secret-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("This cluster has no secret: any machine on the network can join")

    def secured(route):  # the same node, as if it had a secret
        response = route.fetch()
        doc = response.json()
        doc["runtime"]["clusterSecured"] = True
        route.fulfill(response=response, json=doc)

    page.route("**/v1/diagnostics/node", secured)
    with page.expect_response("**/v1/diagnostics/node"):
        page.reload()
    expect(page.locator(".node-card")).to_have_count(2)
    expect(banner).to_be_hidden()
