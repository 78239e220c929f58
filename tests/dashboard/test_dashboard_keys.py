"""The dashboard's key prompt, Keys and Projects pages in headless Chromium against a fake backend.

Every request of the page is answered by Playwright's page.route from the real dashboard files and
an in-test model of the /v1/keys and /v1/projects contract, so nothing is sent on the network and
the tests need no node. tests/dashboard/test_dashboard_keys_real.py runs the same flow on a real node.
"""

import json
import mimetypes
import re
import time
from datetime import datetime, timezone
from urllib.parse import urlparse

import pytest

from tests.dashboard.conftest import CHROMIUM, ROOT, screenshot

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'").expect
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing: apt-get install chromium", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)

DASHBOARD = ROOT / "skulk" / "dashboard"
ORIGIN = "http://127.0.0.1:9"  # the discard port: every request is fulfilled by page.route, none is sent
ADMIN = "sk-skulk-admin-test-key"
USER = "sk-skulk-user-test-key"
PAGES = {"/", "/cluster", "/models", "/chat", "/settings", "/keys", "/projects"}
STATE = {"nodeIdentities": {}, "masterNodeId": None, "instances": {}, "runners": {}, "topology": {"nodes": []}}


def iso(offset_s: float) -> str:
    return datetime.fromtimestamp(time.time() + offset_s, timezone.utc).isoformat()


def counts(requests: int, prompt: int, completion: int, rejections: int) -> dict:
    """One usage window as GET /v1/projects reports it."""
    return {"requests": requests, "prompt_tokens": prompt, "completion_tokens": completion, "rejections": rejections}


def envelope(status: int, message: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": status}}


class FakeBackend:
    """The keys/projects routes as specified: Bearer auth, admin-only, 401/403 envelopes, 404 when absent."""

    def __init__(self, with_access_routes: bool = True):
        self.with_access_routes = with_access_routes
        self.secrets = {ADMIN: "admin", USER: "user"}
        self.keys = {"key-ci": {"id": "key-ci", "name": "ci-bot", "role": "user", "models": ["m-small"],
                                "project": "team-a", "created_at": iso(-3600), "expires_at": None,
                                "last_used_at": iso(-60)}}
        self.projects = {"team-a": {"name": "team-a", "max_concurrent_requests": 2, "requests_per_minute": 10,
                                    "tokens_per_minute": 5000, "max_instances": None, "allowed_models": ["m-small"],
                                    "created_at": iso(-7200), "open_requests": 1, "keys": ["key-ci"],
                                    "usage": {"1m": counts(3, 300, 120, 0), "1h": counts(40, 4000, 1600, 2),
                                              "24h": counts(90, 9000, 3600, 5)}}}
        self.seen: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)
        self.posted: list[dict] = []

    def handle(self, route):
        req = route.request
        path = urlparse(req.url).path
        if path.startswith("/assets/"):
            target = DASHBOARD / path.lstrip("/")
            kind = "text/javascript" if target.suffix == ".js" else mimetypes.guess_type(target.name)[0]
            return route.fulfill(status=200, body=target.read_bytes(), content_type=kind or "application/octet-stream")
        if path in PAGES:
            return route.fulfill(status=200, body=(DASHBOARD / "index.html").read_text(), content_type="text/html")
        auth = req.headers.get("authorization")
        self.seen.append((req.method, path, auth))
        role = self.secrets.get((auth or "").removeprefix("Bearer "))
        if role is None:
            return self.json(route, 401, envelope(401, "A valid API key is required"))
        status, body = self.answer(req.method, path, role, req.post_data)
        return self.json(route, status, body)

    def answer(self, method: str, path: str, role: str, data: str | None):
        if path == "/state":
            return 200, STATE
        if path == "/v1/diagnostics/node":
            return 200, {"runtime": {"clusterSecured": True}}
        if path.startswith(("/v1/keys", "/v1/projects")):
            if not self.with_access_routes:
                return 404, envelope(404, f"Not Found: {path}")
            if role != "admin":
                return 403, envelope(403, "This route needs an admin key")
            return self.access(method, path, json.loads(data) if data else None)
        return 404, envelope(404, f"Not Found: {path}")

    def access(self, method: str, path: str, body: dict | None):
        parts = path.strip("/").split("/")  # ["v1", "keys" | "projects", <id>?]
        table = self.keys if parts[1] == "keys" else self.projects
        if method == "GET" and len(parts) == 2:
            return 200, {"object": "list", "data": list(table.values())}
        if method == "DELETE" and len(parts) == 3:
            return (200, {"deleted": parts[2]}) if table.pop(parts[2], None) else (404, envelope(404, "no such id"))
        if method == "POST" and len(parts) == 2:
            self.posted.append(body)
            return 201, self.create(parts[1], body)
        return 405, envelope(405, "method not allowed")

    def create(self, kind: str, body: dict) -> dict:
        if kind == "projects":
            self.projects[body["name"]] = {**body, "open_requests": 0, "keys": [],
                                           "usage": {w: counts(0, 0, 0, 0) for w in ("1m", "1h", "24h")}}
            return self.projects[body["name"]]
        key_id = f"key-{len(self.keys)}"
        record = {"id": key_id, "name": body["name"], "role": body["role"], "models": body.get("models"),
                  "project": body.get("project"), "created_at": iso(0),
                  "expires_at": iso(body["expires_in_seconds"]) if "expires_in_seconds" in body else None,
                  "last_used_at": None}
        self.keys[key_id] = record
        self.secrets[f"sk-skulk-new-{key_id}"] = body["role"]
        return {**{k: record[k] for k in ("id", "name", "role", "models", "project", "expires_at")},
                "key": f"sk-skulk-new-{key_id}"}

    @staticmethod
    def json(route, status: int, body) -> None:
        route.fulfill(status=status, body=json.dumps(body), content_type="application/json")


def serve(page, backend: FakeBackend) -> FakeBackend:
    page.route("**/*", backend.handle)
    return backend


def sign_in(page, key: str, remember: bool = True) -> None:
    prompt = page.locator("dialog.key-prompt")
    expect(prompt).to_be_visible()
    prompt.locator('input[type="password"]').fill(key)
    if not remember:
        prompt.locator('input[name="remember"]').uncheck()
    prompt.get_by_role("button", name="Use key").click()
    expect(prompt).to_have_count(0)


def test_a_401_asks_for_a_key_once_retries_with_it_and_sign_out_forgets_it(page):
    backend = serve(page, FakeBackend())
    page.goto(f"{ORIGIN}/keys")
    sign_in(page, ADMIN)
    expect(page.locator('tr[data-key-id="key-ci"]')).to_contain_text("ci-bot")
    key_calls = [auth for method, path, auth in backend.seen if path == "/v1/keys"]
    assert key_calls[0] is None and f"Bearer {ADMIN}" in key_calls[1:]  # refused, then retried with the key
    assert page.evaluate("localStorage.getItem('skulk.apiKey')") == ADMIN
    assert page.locator("dialog.key-prompt").count() == 0  # the /state poll and /v1/keys shared one prompt

    page.reload()  # remembered: no prompt, the list loads at once
    expect(page.locator('tr[data-key-id="key-ci"]')).to_be_visible()
    expect(page.locator("dialog.key-prompt")).to_have_count(0)
    page.locator("#sign-out").click()
    expect(page.locator("dialog.key-prompt")).to_be_visible()
    assert page.evaluate("localStorage.getItem('skulk.apiKey')") is None


def polls(backend: FakeBackend) -> int:
    return sum(1 for _, path, _ in backend.seen if path == "/state")


def pump_until(page, condition, timeout_ms: int = 10_000) -> None:
    """Let Playwright answer routes (it only does inside its own calls) until condition() holds."""
    for _ in range(timeout_ms // 100):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("condition not met in time")


def test_a_cancelled_prompt_says_a_key_is_needed_and_does_not_nag(page):
    backend = serve(page, FakeBackend())
    page.goto(f"{ORIGIN}/keys")
    page.locator("dialog.key-prompt").get_by_role("button", name="Cancel").click()
    expect(page.locator(".access-problem")).to_contain_text("needs an API key")
    expect(page.locator("#sign-out")).to_have_text("Enter key")
    before = polls(backend)
    pump_until(page, lambda: polls(backend) >= before + 2)  # refused /state polls must not reopen the prompt
    expect(page.locator("dialog.key-prompt")).to_have_count(0)
    page.locator("#sign-out").click()
    sign_in(page, ADMIN, remember=False)
    expect(page.locator('tr[data-key-id="key-ci"]')).to_be_visible()  # after the reload, from sessionStorage
    assert page.evaluate("localStorage.getItem('skulk.apiKey')") is None
    assert page.evaluate("sessionStorage.getItem('skulk.apiKey')") == ADMIN


def test_create_a_key_shows_it_once_and_revoke_removes_it(page):
    backend = serve(page, FakeBackend())
    page.goto(f"{ORIGIN}/keys")
    sign_in(page, ADMIN)
    page.locator("[data-new-key]").click()
    dialog = page.locator("dialog.key-dialog")
    dialog.locator('[name="name"]').fill("notebook")
    dialog.locator('[name="role"]').select_option("user")
    dialog.locator('[name="models"]').fill("m-small, m-large")
    dialog.locator('[name="project"]').fill("team-a")
    dialog.locator('[name="expiry_unit"]').select_option("hours")
    dialog.locator('[name="expiry_amount"]').fill("2")
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.locator("input.key-once")).to_have_value("sk-skulk-new-key-1")
    expect(dialog).to_contain_text("you will not see it again")
    expect(dialog.locator("[data-copy]")).to_be_visible()
    assert backend.posted == [{"name": "notebook", "role": "user", "models": ["m-small", "m-large"],
                               "project": "team-a", "expires_in_seconds": 7200}]
    dialog.locator("[data-copy]").click()
    expect(dialog.locator("[data-copy]")).not_to_have_text("Copy")
    screenshot(page, "key-created")
    dialog.get_by_role("button", name="Done").click()
    expect(page.locator("dialog.key-dialog")).to_have_count(0)
    row = page.locator('tr[data-key-id="key-1"]')
    expect(row).to_contain_text("notebook")
    expect(row).to_contain_text("m-large")
    assert "sk-skulk-new" not in page.locator("#view").inner_text()  # the list never shows a key value
    screenshot(page, "keys")

    row.locator("[data-revoke]").click()
    expect(row).to_contain_text("Revoke notebook?")
    assert "key-1" in backend.keys  # nothing happens before the confirmation
    row.locator("[data-confirm]").click()
    expect(page.locator('tr[data-key-id="key-1"]')).to_have_count(0)
    assert "key-1" not in backend.keys and "key-ci" in backend.keys


def test_projects_page_shows_policy_and_live_usage_and_creates_and_deletes(page):
    backend = serve(page, FakeBackend())
    page.goto(f"{ORIGIN}/projects")
    sign_in(page, ADMIN)
    row = page.locator('tr[data-project="team-a"]')
    expect(row.locator('[data-limit="requests_per_minute"]')).to_have_text("10 requests / min")
    expect(row.locator('[data-usage="requests_per_minute"]')).to_contain_text("3 / 10 requests / min")
    expect(row.locator('[data-usage="max_concurrent_requests"] [role="meter"]')).to_have_attribute("aria-valuenow", "50")
    expect(row.locator('[data-usage="tokens_per_minute"]')).to_contain_text("420 / 5000 tokens / min")
    expect(row.locator('tr[data-window="1h"]')).to_have_text("1h4056002")  # requests, tokens, rejected
    backend.projects["team-a"]["usage"]["1m"]["requests"] = 7  # live: the page refreshes on its own
    expect(row.locator('[data-usage="requests_per_minute"]')).to_contain_text("7 / 10", timeout=10_000)
    screenshot(page, "projects")

    page.locator("[data-new-project]").click()
    dialog = page.locator("dialog.project-dialog")
    dialog.locator('[name="name"]').fill("batch")
    dialog.locator('[name="requests_per_minute"]').fill("0")
    dialog.get_by_role("button", name="Create project").click()
    expect(dialog.locator('[role="alert"]')).to_contain_text("above 0")
    dialog.locator('[name="requests_per_minute"]').fill("60")
    dialog.locator('[name="allowed_models"]').fill("m-small")
    dialog.get_by_role("button", name="Create project").click()
    expect(page.locator('tr[data-project="batch"] [data-usage="requests_per_minute"]')).to_contain_text("0 / 60")
    assert backend.posted == [{"name": "batch", "requests_per_minute": 60, "allowed_models": ["m-small"]}]
    page.locator('[data-delete-project="batch"]').click()
    page.locator('tr[data-project="batch"] [data-confirm]').click()
    expect(page.locator('tr[data-project="batch"]')).to_have_count(0)
    assert set(backend.projects) == {"team-a"}


@pytest.mark.parametrize(("backend", "key", "text"), [
    (FakeBackend(), USER, "not an admin key"),
    (FakeBackend(with_access_routes=False), ADMIN, "does not support keys yet"),
], ids=["user-key", "no-routes"])
def test_keys_page_explains_a_user_key_and_a_node_without_keys(page, backend, key, text):
    serve(page, backend)
    page.goto(f"{ORIGIN}/keys")
    sign_in(page, key)
    expect(page.locator(".access-problem")).to_contain_text(text)
    expect(page.locator("dialog.key-prompt")).to_have_count(0)  # a 403/404 is not a reason to ask again


def test_streamed_chat_carries_the_key_and_a_refused_key_is_asked_again(page):
    backend = serve(page, FakeBackend())
    backend.secrets["sk-revoked"] = "admin"  # /state keeps working: only the chat route refuses it
    chunk = {"choices": [{"index": 0, "delta": {"content": "Paris"}, "finish_reason": "stop"}]}
    chat_auth = []

    def chat(route):
        chat_auth.append(route.request.headers.get("authorization"))
        if len(chat_auth) == 1:  # the remembered key was revoked meanwhile
            return backend.json(route, 401, envelope(401, "key revoked"))
        route.fulfill(status=200, content_type="text/event-stream", body=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n")

    page.route(re.compile(r".*/v1/chat/completions$"), chat)
    page.add_init_script(f"localStorage.setItem('skulk.apiKey', {json.dumps('sk-revoked')})")
    page.goto(f"{ORIGIN}/cluster")
    page.evaluate("""() => { window.answer = import('./assets/js/sse.js').then((m) => {
        const parts = [];
        return m.streamChat({ model: 'm', messages: [], onDelta: (t) => parts.push(t) }).then((r) => [r, parts.join('')]);
    }); }""")
    prompt = page.locator("dialog.key-prompt")
    expect(prompt).to_contain_text("refused the key")
    sign_in(page, ADMIN)
    assert page.evaluate("() => window.answer") == ["stop", "Paris"]
    assert chat_auth == ["Bearer sk-revoked", f"Bearer {ADMIN}"]
