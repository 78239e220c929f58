"""Fixtures for the browser tests: a 2-node loopback cluster, a third node for the base-path
proxy case, and headless Debian Chromium driven by Playwright (skipped when either is missing)."""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest

from skulk.testing.cluster import LocalCluster, NodeProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Serving needs the runner supervisor; until it exists the nodes run without workers.
HAVE_SUPERVISOR = importlib.util.find_spec("skulk.runner.supervisor") is not None
BASE_PATH = "/skulk"


@dataclass
class DashCluster:
    nodes: list[NodeProcess]
    master: NodeProcess
    other: NodeProcess  # the non-master node the dashboard is loaded from
    names: dict[str, str]  # node id -> friendly name
    prefixed: NodeProcess  # a lone node started with --dashboard-base-path


def _converged(nodes: list[NodeProcess]):
    docs = [n.get("/state") for n in nodes]
    ids = {n.get("/node_id") for n in nodes}
    if all(set(d["nodeIdentities"]) == ids and d["masterNodeId"] for d in docs):
        if len({d["masterNodeId"] for d in docs}) == 1:
            return docs[0]
    return None


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    env = {"SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"}
    worker = [] if HAVE_SUPERVISOR else ["--no-worker"]
    cluster = LocalCluster(root / "main", extra_env=env)
    side = LocalCluster(root / "side", extra_env=env)
    try:
        alpha = cluster.add_node("alpha", extra_args=worker, namespace="skulk-dash")
        prefixed = side.add_node("gamma", extra_args=["--no-worker", "--dashboard-base-path", BASE_PATH],
                                 namespace="skulk-dash-proxy", bootstrap=[])
        cluster.wait_ready(alpha, timeout=60)
        beta = cluster.add_node("beta", extra_args=worker, namespace="skulk-dash")
        cluster.wait_ready(beta, timeout=60)
        side.wait_ready(prefixed, timeout=60)
        doc = wait_until(lambda: _converged(cluster.nodes), 30, 0.2, "both nodes see each other and one master")
        ids = {n.get("/node_id"): n for n in cluster.nodes}
        master = ids[doc["masterNodeId"]]
        other = next(n for n in cluster.nodes if n is not master)
        names = {i: doc["nodeIdentities"][i]["friendlyName"] for i in ids}
        yield DashCluster(cluster.nodes, master, other, names, prefixed)
    finally:
        cluster.stop_all()
        side.stop_all()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # the browser test module skips when it is missing

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (empty localStorage) whose uncaught JS errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(tab, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
