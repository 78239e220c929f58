"""Metric history on real nodes: every node's samples through either node; purge clears them all."""

import httpx

from skulk.testing.cluster import wait_until

FIELDS = {"at", "cpu_percent", "memory_used_bytes", "memory_total_bytes", "disk_used_bytes", "tokens_per_second",
          "queue_depth"}


def history(via, node_id: str, **params) -> dict:
    resp = httpx.get(via.url + "/v1/metrics/history", params={"node_id": node_id, **params}, timeout=10,
                     trust_env=False)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_history_for_every_node_through_either_node_then_purged(cluster):
    cluster.extra_env.update({"SKULK_METRICS__SAMPLE_SECONDS": "1", "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"})
    a = cluster.add_node("a")
    cluster.wait_ready(a)
    b = cluster.add_node("b")
    cluster.wait_ready(b)
    nodes = {a.get("/node_id"): a, b.get("/node_id"): b}
    wait_until(lambda: all(set(n.get("/state")["nodeIdentities"]) == set(nodes) for n in nodes.values()), 20,
               message="one session")

    for node_id in nodes:
        for via in nodes.values():
            doc = wait_until(lambda: (d := history(via, node_id)) and len(d["samples"]) >= 3 and d, 20,
                             message=f"samples of {node_id} via {via.name}")
            assert doc["node_id"] == node_id and doc["sample_seconds"] == 1
            sample = doc["samples"][-1]
            assert FIELDS <= set(sample) and sample["memory_total_bytes"] > 0 and sample["cpu_percent"] is not None
            assert sample["queue_depth"] == 0
            ats = [s["at"] for s in doc["samples"]]
            assert ats == sorted(ats)
    stepped = history(b, a.get("/node_id"), step=60)
    assert stepped["step"] == 60 and 1 <= len(stepped["samples"]) <= 2
    bad = httpx.get(b.url + "/v1/metrics/history", params={"node_id": a.get("/node_id"), "step": "-1"},
                    timeout=10, trust_env=False)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "step"

    resp = httpx.post(a.url + "/admin/purge", json={"metrics": True, "nodes": True}, timeout=20, trust_env=False)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body["metrics"]["cleared"]) == set(nodes) and body["metrics"]["failed"] == {}
    assert body["nodes"] == {"forgotten": []}  # both are live: nothing to forget
    for node_id in nodes:  # emptied (a sample may have been taken since)
        assert len(history(a, node_id)["samples"]) <= 2
