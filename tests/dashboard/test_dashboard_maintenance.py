"""The Cluster page's node maintenance toggles in headless Chromium against an in-test /state (no node)."""

import copy

import pytest

from tests.dashboard.conftest import CHROMIUM
from tests.dashboard.test_dashboard_keys import ADMIN, ORIGIN, FakeBackend, envelope, serve, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing: apt-get install chromium", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)
MEMORY = {"ramTotal": {"inBytes": 16 * 2**30}, "ramAvailable": {"inBytes": 8 * 2**30},
          "swapTotal": {"inBytes": 0}, "swapAvailable": {"inBytes": 0}}


class MaintenanceBackend(FakeBackend):
    def __init__(self):
        super().__init__()
        self.state = {"nodeIdentities": {n: {"friendlyName": n} for n in ("alpha", "beta", "gamma")},
                      "nodeMemory": {n: MEMORY for n in ("alpha", "beta", "gamma")},
                      "nodeSystem": {"alpha": {}, "beta": {}, "gamma": {"hasWorker": False}},
                      "nodeMaintenance": {"beta": "cordoned"}, "masterNodeId": "alpha", "instances": {},
                      "runners": {}, "topology": {"nodes": ["alpha", "beta", "gamma"]}, "lastEventAppliedIdx": 1}
        self.actions: list[tuple[str, str]] = []

    def answer(self, method, path, role, data):
        if path == "/state":
            return 200, copy.deepcopy(self.state)
        if not path.startswith("/v1/nodes/"):
            return super().answer(method, path, role, data)
        if role != "admin":
            return 403, envelope(403, "This route needs an admin key")
        _, _, node, action = path.strip("/").split("/")
        self.actions.append((node, action))
        modes = self.state["nodeMaintenance"]
        if action == "uncordon":
            modes.pop(node, None)
        else:
            modes[node] = "draining" if action == "drain" else "cordoned"
        return 200, {"node_id": node, "maintenance": modes.get(node)}


def test_cordon_drain_uncordon_toggles_call_the_routes_and_show_the_mode(page):
    backend = serve(page, MaintenanceBackend())
    page.goto(f"{ORIGIN}/cluster")
    sign_in(page, ADMIN)
    alpha, beta, gamma = (page.locator(f'article[data-node-id="{n}"]') for n in ("alpha", "beta", "gamma"))
    expect(beta.locator("[data-maintenance]")).to_have_text("cordoned")
    expect(gamma).to_contain_text("no worker")
    expect(gamma.locator("[data-action]")).to_have_count(0)  # never given shards: nothing to toggle
    alpha.locator('[data-action="drain"]').click()
    expect(alpha.locator("[data-maintenance]")).to_have_text("draining")
    beta.locator('[data-action="uncordon"]').click()
    expect(beta.locator("[data-maintenance]")).to_have_count(0)
    beta.locator('[data-action="cordon"]').click()
    expect(beta.locator("[data-maintenance]")).to_have_text("cordoned")
    assert backend.actions == [("alpha", "drain"), ("beta", "uncordon"), ("beta", "cordon")]
