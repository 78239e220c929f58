"""The Deployments page in headless Chromium against an in-test model of /v1/deployments (no node, no network)."""

import json
from urllib.parse import urlparse

import pytest

from tests.dashboard.conftest import CHROMIUM, screenshot
from tests.dashboard.test_dashboard_keys import ADMIN, DASHBOARD, ORIGIN, FakeBackend, envelope, serve, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing: apt-get install chromium", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)


def deployment(dep_id: str, status: str, **fields) -> dict:
    return {"deployment_id": dep_id, "model_id": f"org/{dep_id}", "status": status, "reason": None, "replicas": 1,
            "ready_replicas": 1 if status == "ready" else 0, "lease_seconds": None, "expires_in_seconds": None,
            "instances": [{"instance_id": f"i-{dep_id}", "ready": status == "ready",
                           "nodes": [{"node_id": "n1", "name": "alpha"}]}], **fields}


class DeploymentsBackend(FakeBackend):
    def __init__(self):
        super().__init__()
        self.deployments = {
            "leased": deployment("leased", "ready", lease_seconds=600, expires_in_seconds=125),
            "broken": deployment("broken", "failed", reason="3 runner crashes in 300 s; last error: boom",
                                 instances=[]),
            "idle": deployment("idle", "paused"),
        }
        self.actions: list[tuple[str, str, dict | None]] = []

    def handle(self, route):
        if urlparse(route.request.url).path == "/deployments":  # the page itself, like the other pages
            return route.fulfill(status=200, body=(DASHBOARD / "index.html").read_text(), content_type="text/html")
        return super().handle(route)

    def answer(self, method, path, role, data):
        if not path.startswith("/v1/deployments"):
            return super().answer(method, path, role, data)
        if role != "admin":
            return 403, envelope(403, "This route needs an admin key")
        parts = path.strip("/").split("/")  # ["v1", "deployments", <id>?, <action>?]
        if method == "GET" and len(parts) == 2:
            return 200, {"object": "list", "data": list(self.deployments.values())}
        d = self.deployments.get(parts[2]) if len(parts) > 2 else None
        if d is None:
            return 404, envelope(404, "Deployment not found")
        body = json.loads(data) if data else None
        if method == "DELETE":
            del self.deployments[parts[2]]
            return 200, {"deployment_id": parts[2], "deleted": True}
        self.actions.append((parts[2], parts[3], body))
        if parts[3] == "extend":
            d["expires_in_seconds"] += body["seconds"]
        elif parts[3] in ("pause", "resume"):
            d["status"] = "paused" if parts[3] == "pause" else "pending"
        return 200, d


def test_list_shows_status_reason_replicas_and_countdown_and_the_actions_call_the_routes(page):
    backend = serve(page, DeploymentsBackend())
    page.goto(f"{ORIGIN}/deployments")
    sign_in(page, ADMIN)
    leased, broken, idle = (page.locator(f'tr[data-deployment="{d}"]') for d in ("leased", "broken", "idle"))
    expect(leased.locator("[data-status]")).to_have_text("ready")
    expect(leased.locator("[data-replicas]")).to_have_text("1 / 1")
    expect(leased.locator("[data-lease]")).to_contain_text("2 min 05 s")
    expect(broken.locator("[data-reason]")).to_contain_text("last error: boom")
    expect(idle.locator('[data-action="resume"]')).to_be_visible()
    expect(leased.locator('[data-action="pause"]')).to_be_visible()
    screenshot(page, "deployments")
    leased.locator('[data-action="extend"]').click()
    expect(leased.locator("[data-lease]")).to_contain_text("1 h 02 min")
    broken.locator('[data-action="restart"]').click()
    idle.locator('[data-action="resume"]').click()
    expect(idle.locator("[data-status]")).to_have_text("pending")
    assert [(d, a) for d, a, _ in backend.actions] == [("leased", "extend"), ("broken", "restart"), ("idle", "resume")]
    assert backend.actions[0][2] == {"seconds": 3600}
    broken.locator('[data-action="delete"]').click()
    assert "broken" in backend.deployments  # nothing happens before the confirmation
    broken.locator("[data-confirm]").click()
    expect(page.locator('tr[data-deployment="broken"]')).to_have_count(0)
    assert "broken" not in backend.deployments
