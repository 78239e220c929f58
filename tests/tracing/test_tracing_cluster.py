"""Tracing on two real node processes: the flag set on one node, the request owned by the other,
served by a two-rank pipeline across both, so the trace holds the API's and each rank's spans."""

import httpx
import pytest

from skulk.testing.cluster import LocalCluster, wait_until
from skulk.testing.serving import chat, ready_instance, unwrap

pytest.importorskip("skulk.runner.supervisor")
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


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
    assert a.post("/place_instance", {"model_id": DEFAULT_MODEL, "min_nodes": 2}).status_code == 200
    inst = ready_instance(a, DEFAULT_MODEL, timeout=180)
    assert len(inst["shardAssignments"]["nodeToRunner"]) == 2
    resp = httpx.put(a.url + "/v1/tracing", json={"enabled": True}, timeout=10, trust_env=False)
    assert resp.status_code == 200 and resp.json() == {"enabled": True}
    wait_until(lambda: b.get("/v1/tracing")["enabled"], 10, message="flag replicated to b")

    chat(b, DEFAULT_MODEL, "What is the capital of France?")
    rows = wait_until(lambda: b.get("/v1/traces")["traces"], 10, message="trace written on b")
    assert len(rows) == 1 and rows[0]["modelId"] == DEFAULT_MODEL and rows[0]["taskKind"] == "TextGeneration"
    task_id = rows[0]["taskId"]
    # The ranks' spans arrive through the master (TracesMerged), possibly after the API's own.
    stats = wait_until(lambda: (s := b.get(f"/v1/traces/{task_id}/stats"))["byRank"].keys() >= {"0", "1"} and s,
                       15, message="both ranks' spans merged into b's trace")
    assert {"api", "queue", "prefill", "decode", "sample", "collective", "pipeline"} <= set(stats["byCategory"])
    assert stats["totalWallTimeUs"] > 0 and stats["byCategory"]["decode"]["count"] > 1
    assert "sample" in stats["byRank"]["1"]["byCategory"] and "pipeline" in stats["byRank"]["0"]["byCategory"]
    shards = inst["shardAssignments"]
    node_of_rank = {unwrap(shards["runnerToShard"][runner])[1]["deviceRank"]: node_id
                    for node_id, runner in shards["nodeToRunner"].items()}
    spans = b.get(f"/v1/traces/{task_id}")["traces"]
    assert {(s["tid"], s["args"]["node_id"]) for s in spans if "node_id" in s["args"]} == set(node_of_rank.items())
    assert [n["nodeId"] for n in stats["sourceNodes"]][0] == b.get("/node_id")
    assert {n["nodeId"] for n in stats["sourceNodes"]} == set(node_of_rank.values())
    assert {n["friendlyName"] for n in stats["sourceNodes"]} == {"a", "b"}
    assert a.get("/v1/traces")["traces"] == []  # a ran rank spans but owned no request: b holds the trace
    assert task_id in [r["taskId"] for r in a.get("/v1/traces/cluster", timeout=15)["traces"]]
    assert a.get(f"/v1/traces/cluster/{task_id}/stats", timeout=15)["totalWallTimeUs"] == stats["totalWallTimeUs"]
    assert httpx.get(f"{a.url}/v1/traces/cluster/nope", timeout=15, trust_env=False).status_code == 404

    resp = httpx.put(a.url + "/v1/tracing", json={"enabled": False}, timeout=10, trust_env=False)
    assert resp.json() == {"enabled": False}
    wait_until(lambda: not b.get("/v1/tracing")["enabled"], 10, message="flag off on b")
    chat(b, DEFAULT_MODEL, "Hello")
    assert [r["taskId"] for r in b.get("/v1/traces")["traces"]] == [task_id]  # untraced request left no file
