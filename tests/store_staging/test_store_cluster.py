"""Model store and staging on real node processes over 127.0.0.1: a store host, nodes that
stage the default model from it, serve it, evict it, purge it, and survive a kill mid-copy."""

import signal

import httpx
import pytest
import yaml

from skulk.store.registry import Registry, model_files
from skulk.testing.cluster import LocalCluster, free_port, wait_until
from skulk.testing.serving import chat, ready_instance
from tests.store_staging.conftest import DEFAULT_MODEL

pytest.importorskip("skulk.runner.supervisor")
QUESTION = "What is the capital of France?"
DIR_NAME = DEFAULT_MODEL.replace("/", "--")
THROTTLE = "SKULK_STAGING_THROTTLE_BPS"


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path, extra_env={"SKULK_SETTLE_GRACE_SECONDS": "5",
                                          "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"})
    try:
        yield c
    finally:
        c.stop_all()


def store_config(store_path, port, *, store_host="s0", keep_gb=1.0, overrides=None) -> dict:
    return {"model_store": {
        "store_host": store_host, "store_http_host": "127.0.0.1", "store_port": port, "store_path": str(store_path),
        "staging": {"node_cache_path": "staging", "staging_keep_recent_gb": keep_gb},
        "node_overrides": overrides or {}}}


def start_nodes(cluster, names, config, env=None):
    """Start nodes (names, or nodes added with start=False) with `config` as their skulk.yaml."""
    nodes = []
    for name in names:
        node = cluster.add_node(name, start=False) if isinstance(name, str) else name
        node.home.mkdir(parents=True, exist_ok=True)
        (node.home / "skulk.yaml").write_text(yaml.safe_dump(config))  # nodes run in their home
        node.env.update((env or {}).get(node.name, {}))
        node.start()
        nodes.append(node)
    for node in nodes:
        cluster.wait_ready(node)
    n = len(nodes)

    def connected():
        state = nodes[0].get("/state")
        edges = sum(len(s) for s in state["topology"]["connections"].values())
        return len(state["topology"]["nodes"]) == n and edges >= n * (n - 1) and all(
            len(node.get("/state")["nodeMemory"]) == n for node in nodes)
    wait_until(connected, 30, message="topology complete")
    return nodes, {n.name: n.get("/node_id") for n in nodes}


def place(node, **body):
    resp = node.post("/place_instance", {"model_id": DEFAULT_MODEL, **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


def staged(node):
    return node.home / "staging" / DIR_NAME


def matches_store(node, store_path) -> bool:
    entry = Registry(store_path).get(DEFAULT_MODEL)
    files = {p.relative_to(staged(node)).as_posix(): p for p in model_files(staged(node))}
    return set(files) == {f.path for f in entry.files} and all(
        files[f.path].read_bytes() == (store_path / DIR_NAME / f.path).read_bytes() for f in entry.files)


def download(node, of_node_id):
    for tagged in node.get("/state")["downloads"].get(of_node_id, []):
        (kind, body), = tagged.items()
        if body["modelId"] == DEFAULT_MODEL:
            return kind, body
    return None, None


def seed_idle_copy(node, name="acme--idle"):
    """A small staged model nobody uses, left by an earlier run (it fits every budget here)."""
    idle = node.home / "staging" / name
    idle.mkdir(parents=True)
    (idle / "config.json").write_text("{}")
    (idle / ".last_used").write_text(name.replace("--", "/"))
    (idle / ".skulk-staged").write_text(name.replace("--", "/"))  # staged by the store, not by a user
    return idle


def test_nodes_stage_from_the_store_serve_then_evict_and_purge(cluster, model_store):
    # a1 keeps 50 MB of idle copies (less than the model), b1 keeps 1 GB.
    config = store_config(model_store, free_port(), keep_gb=1.0,
                          overrides={"a1": {"staging": {"staging_keep_recent_gb": 0.05}}})
    s0, a1, b1 = (cluster.add_node(name, start=False) for name in ("s0", "a1", "b1"))
    idle = [seed_idle_copy(a1), seed_idle_copy(b1)]
    (s0, a1, b1), ids = start_nodes(cluster, [s0, a1, b1], config)
    # proxied to the store host, whose HTTP server may still be starting on a loaded machine
    entries = wait_until(lambda: a1.get("/store/registry")["entries"], 30, message="store registry via a1")
    assert [e["model_id"] for e in entries] == [DEFAULT_MODEL]
    assert b1.get("/store/health")["storePath"] == str(model_store)

    place(a1, min_nodes=2, excluded_nodes=[ids["s0"]])
    inst = ready_instance(s0, DEFAULT_MODEL, timeout=150)
    assert set(inst["shardAssignments"]["nodeToRunner"]) == {ids["a1"], ids["b1"]}
    for node in (a1, b1):
        assert matches_store(node, model_store), node.name
        assert not any((node.home / "models").glob("*")), "the model must come from the store only"
        assert download(s0, ids[node.name])[0] == "DownloadCompleted"
    assert not staged(s0).exists()
    assert "Paris" in chat(s0, DEFAULT_MODEL, QUESTION)["choices"][0]["message"]["content"]
    storage = a1.get("/store/storage")
    in_use = {m["modelId"]: m["inUse"] for m in storage["stagedModels"]}
    assert in_use == {DEFAULT_MODEL: True, "acme/idle": False}
    assert storage["stagedTotalBytes"] >= Registry(model_store).get(DEFAULT_MODEL).total_bytes

    # A purge reaches every node: idle copies go, the copies in use stay and keep serving.
    resp = s0.post("/store/purge-staging", {})
    assert resp.status_code == 200 and resp.json()["commandId"]
    wait_until(lambda: not any(p.exists() for p in idle), 20, message="every node purged its idle copy")
    assert matches_store(a1, model_store) and matches_store(b1, model_store)
    assert "Paris" in chat(a1, DEFAULT_MODEL, QUESTION)["choices"][0]["message"]["content"]

    # Deactivation evicts by each node's budget: a1's 50 MB cannot hold the model, b1's 1 GB can.
    assert a1.delete(f"/instance/{inst['instanceId']}").status_code == 200
    wait_until(lambda: not staged(a1).exists(), 30, message="a1 evicts its idle copy")
    wait_until(lambda: download(s0, ids["a1"])[0] == "DownloadPending", 10, message="a1 no longer has it")
    assert staged(b1).exists()
    assert [m["inUse"] for m in b1.get("/store/storage")["stagedModels"]] == [False]
    assert b1.post("/store/purge-staging", {"modelId": DEFAULT_MODEL}).status_code == 200
    wait_until(lambda: not staged(b1).exists(), 20, message="b1 purges the now idle model")


def test_a_node_killed_mid_staging_resumes_its_copy_after_a_restart(cluster, model_store):
    config = store_config(model_store, free_port())
    # s0 stays master: a1 dying as master would start a new session that drops a1's instance,
    # and a1 would then (rightly) clean up its partial copy instead of resuming it.
    s0 = cluster.add_node("s0", start=False, extra_args=["--force-master"])
    (s0, a1), ids = start_nodes(cluster, [s0, "a1"], config, env={"a1": {THROTTLE: str(8 * 2**20)}})
    wait_until(lambda: a1.get("/state")["masterNodeId"] == ids["s0"], 20, message="s0 is master")
    place(s0, min_nodes=1, excluded_nodes=[ids["s0"]])

    def some_copied():
        kind, body = download(s0, ids["a1"])
        return kind == "DownloadOngoing" and body["downloadedBytes"] > 20 * 2**20
    wait_until(some_copied, 60, interval=0.2, message="a1 has copied part of the model")
    a1.kill(signal.SIGKILL)
    partial = a1.home / "staging" / ".partial" / DIR_NAME
    assert partial.is_dir() and not staged(a1).exists(), "a cut copy stays partial, never published"

    a1.env.pop(THROTTLE)
    a1.start()  # same home, ports and identity
    cluster.wait_ready(a1)
    ready_instance(s0, DEFAULT_MODEL, timeout=120)
    assert matches_store(a1, model_store) and not partial.exists()
    assert "resuming model.safetensors from byte" in a1.log_path.read_text()
    assert "Paris" in chat(a1, DEFAULT_MODEL, QUESTION)["choices"][0]["message"]["content"]


def test_an_unreachable_store_fails_the_runner_with_a_message_saying_so(cluster, model_store):
    config = store_config(model_store, free_port(), store_host="gone")  # nobody serves it
    (a1,), ids = start_nodes(cluster, ["a1"], config)
    resp = a1.post("/place_instance", {"model_id": DEFAULT_MODEL})
    assert resp.status_code == 200, resp.text

    def failed():
        kind, body = download(a1, ids["a1"])
        return kind == "DownloadFailed" and body["errorMessage"]
    message = wait_until(failed, 30, interval=0.2, message="staging fails")
    assert message.startswith("Store unreachable: the model store at http://127.0.0.1:")
    runner_failures = [e["RunnerStatusUpdated"]["runnerStatus"]["RunnerFailed"]["errorMessage"]
                       for e in a1.get("/events") if "RunnerFailed" in str(e.get("RunnerStatusUpdated", ""))]
    assert runner_failures and "Store unreachable" in runner_failures[0]
    health = httpx.get(a1.url + "/store/health", timeout=10, trust_env=False)
    assert health.status_code == 503 and health.json()["error"]["message"].startswith("Store unreachable")
    assert not staged(a1).exists()
