"""Tracing on two real node processes: the flag set on one node, the request owned by the other."""

import httpx
import pytest

from skulk.testing.cluster import LocalCluster, wait_until
from skulk.testing.serving import chat, ready_instance

pytest.importorskip("skulk.runner.supervisor")
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from skulk.models import ensure_model_dir
    root = tmp_path_factory.mktemp("models")
    ensure_model_dir(DEFAULT_MODEL, root, offline=True)
    return root


@pytest.fixture
def cluster(tmp_path, models_dir):
    c = LocalCluster(tmp_path, extra_env={"SKULK_MODELS_DIR": str(models_dir), "SKULK_SETTLE_GRACE_SECONDS": "5",
                                          "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"})
    try:
        yield c
    finally:
        c.stop_all()


def two_connected_nodes(cluster):
    nodes = [cluster.add_node(name) for name in ("a", "b")]
    for node in nodes:
        cluster.wait_ready(node)

    def connected():
        return all(len(n.get("/state")["topology"]["nodes"]) == 2 and len(n.get("/state")["nodeMemory"]) == 2
                   for n in nodes)
    wait_until(connected, 30, message="two nodes see each other")
    return nodes


def test_trace_recorded_on_owning_node_and_found_cluster_wide(cluster):
    a, b = two_connected_nodes(cluster)
    assert a.post("/place_instance", {"model_id": DEFAULT_MODEL, "min_nodes": 1}).status_code == 200
    ready_instance(a, DEFAULT_MODEL, timeout=180)
    resp = httpx.put(a.url + "/v1/tracing", json={"enabled": True}, timeout=10, trust_env=False)
    assert resp.status_code == 200 and resp.json() == {"enabled": True}
    wait_until(lambda: b.get("/v1/tracing")["enabled"], 10, message="flag replicated to b")

    chat(b, DEFAULT_MODEL, "What is the capital of France?")
    rows = wait_until(lambda: b.get("/v1/traces")["traces"], 10, message="trace written on b")
    assert len(rows) == 1 and rows[0]["modelId"] == DEFAULT_MODEL and rows[0]["taskKind"] == "TextGeneration"
    task_id = rows[0]["taskId"]
    assert rows[0]["sourceNodes"][0]["nodeId"] == b.get("/node_id")

    stats = b.get(f"/v1/traces/{task_id}/stats")
    assert {"api", "queue", "prefill", "decode"} <= set(stats["byCategory"])
    assert stats["totalWallTimeUs"] > 0 and stats["byCategory"]["decode"]["count"] == 1
    assert a.get("/v1/traces")["traces"] == []  # a served nothing it owned
    assert task_id in [r["taskId"] for r in a.get("/v1/traces/cluster", timeout=15)["traces"]]
    assert a.get(f"/v1/traces/cluster/{task_id}/stats", timeout=15)["totalWallTimeUs"] == stats["totalWallTimeUs"]
    assert httpx.get(f"{a.url}/v1/traces/cluster/nope", timeout=15, trust_env=False).status_code == 404

    resp = httpx.put(a.url + "/v1/tracing", json={"enabled": False}, timeout=10, trust_env=False)
    assert resp.json() == {"enabled": False}
    wait_until(lambda: not b.get("/v1/tracing")["enabled"], 10, message="flag off on b")
    chat(b, DEFAULT_MODEL, "Hello")
    assert [r["taskId"] for r in b.get("/v1/traces")["traces"]] == [task_id]  # untraced request left no file
