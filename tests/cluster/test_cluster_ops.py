"""Operations on real node processes: config sync, diagnostics fan-out, metrics, restart, event log."""

import json

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from skulk.testing.cluster import wait_until
from skulk.testing.serving import chat, ready_instance

HUGE_FLOOR = str(10**18)  # more free space than any disk has: counting-only from the first event
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def agreed(nodes, expected_ids):
    docs = [n.get("/state") for n in nodes]
    if not all(set(d["nodeIdentities"]) == expected_ids for d in docs):
        return None
    return docs if len({d["masterNodeId"] for d in docs}) == 1 else None


def start(cluster, names):
    nodes = [cluster.add_node(name) for name in names]
    for node in nodes:
        cluster.wait_ready(node)
    ids = {n.get("/node_id") for n in nodes}
    wait_until(lambda: agreed(nodes, ids), 15, message="nodes agree on one session")
    return nodes, ids


def metrics(node) -> dict:
    """{(name, frozenset(labels)): value} of every sample /metrics serves."""
    text = httpx.get(node.url + "/metrics", timeout=3, trust_env=False).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def requests_to(samples: dict, route: str) -> float:
    return sum(v for (name, labels), v in samples.items()
               if name == "skulk_http_requests_total" and ("route", route) in labels and ("status", "200") in labels)


def test_put_config_reaches_every_node_and_later_joiners(cluster):
    # n1 has a local token of its own that the cluster config must never replace.
    (cluster.root / "n1").mkdir(parents=True)
    (cluster.root / "n1" / "skulk.yaml").write_text("hf_token: local-token\n")
    nodes, ids = start(cluster, ["n0", "n1", "n2"])
    body = {"inference": {"kv_cache_backend": "mlx_quantized"}, "tracing": {"retention_days": 9},
            "logging": {"enabled": True}, "node_name": "only-n0", "hf_token": "n0-secret"}
    resp = httpx.put(nodes[0].url + "/config", json={"config": body}, timeout=10, trust_env=False)
    assert resp.status_code == 200, resp.text

    def synced(node):
        doc = node.get("/config")
        cfg = doc["config"]
        return (cfg.get("inference") == {"kv_cache_backend": "mlx_quantized"}
                and cfg.get("tracing") == {"retention_days": 9}
                and doc["effective"]["inference"]["kv_cache_backend"] == "mlx_quantized" and doc)
    for node in nodes[1:]:
        doc = wait_until(lambda: synced(node), 5, message=f"{node.name} got the config")
        assert "node_name" not in doc["config"] and "hf_token" not in doc["config"]
    assert yaml.safe_load((cluster.root / "n1" / "skulk.yaml").read_text())["hf_token"] == "local-token"
    assert "hf_token" not in json.dumps(nodes[2].get("/state")["clusterConfig"])
    # logging.enabled applied live: JSON lines with the node id on stdout.
    n2_id = nodes[2].get("/node_id")
    assert nodes[2].get("/v1/diagnostics/node")["runtime"]["structuredLoggingConfigured"] is True
    lines = [json.loads(line) for line in nodes[2].log_tail(400).splitlines() if line.startswith('{"ts"')]
    assert any(rec["nodeId"] == n2_id and rec["level"] == "INFO" for rec in lines)

    late = cluster.add_node("late")
    cluster.wait_ready(late)
    doc = wait_until(lambda: synced(late), 15, message="a node started later gets the config")
    assert doc["config"].get("logging") == {"enabled": True}


def test_cluster_diagnostics_fan_out_with_partial_failure(cluster):
    nodes, ids = start(cluster, ["n0", "n1", "n2"])
    doc = nodes[0].get("/v1/diagnostics/cluster", timeout=15)
    assert doc["localNodeId"] == nodes[0].get("/node_id") and doc["masterNodeId"] in ids
    assert {e["nodeId"] for e in doc["nodes"]} == ids and all(e["ok"] for e in doc["nodes"])
    for entry in doc["nodes"]:
        diag = entry["diagnostics"]
        assert diag["runtime"]["nodeId"] == entry["nodeId"] and entry["url"].startswith("http://127.0.0.1:")
        assert diag["processes"][0]["role"] == "node" and diag["processes"][0]["pid"] == diag["runtime"]["pid"]
        assert {"currentMemory", "disk", "system", "network"} <= set(diag["resources"])
        assert isinstance(diag["warnings"], list) and isinstance(diag["placements"], list)

    dead = nodes[2]
    dead_id = dead.get("/node_id")
    dead.kill()  # its last heartbeat keeps it "live" for a while: the fan-out must report, not hang
    doc = nodes[0].get("/v1/diagnostics/cluster", timeout=15)
    by_id = {e["nodeId"]: e for e in doc["nodes"]}
    assert by_id[dead_id]["ok"] is False and by_id[dead_id]["error"] and by_id[dead_id]["diagnostics"] is None
    assert all(e["ok"] for n, e in by_id.items() if n != dead_id)


def test_metrics_parse_and_move_with_traffic(cluster):
    cluster.extra_env["SKULK_EVENT_LOG_MIN_FREE_BYTES"] = "0"  # a small CI disk must not change the mode
    nodes, ids = start(cluster, ["a", "b"])
    a, b = nodes
    before = metrics(a)
    for _ in range(3):
        a.get("/state")
        a.get("/node_id")
    after = metrics(a)
    assert requests_to(after, "/state") >= requests_to(before, "/state") + 3
    assert requests_to(after, "/node_id") >= requests_to(before, "/node_id") + 3
    assert after[("skulk_elections_total", frozenset())] >= 1
    assert after[("skulk_connected_peers", frozenset())] >= 1
    assert after[("skulk_events_indexed_total", frozenset())] >= 1
    mode_of = {dict(labels)["mode"]: v for (name, labels), v in after.items() if name == "skulk_event_log_mode"}
    assert sum(mode_of.values()) == 1 and mode_of[a.get("/v1/diagnostics/node")["eventLog"]["mode"]] == 1
    assert ("skulk_malformed_messages_total", frozenset({("channel", "gossip")})) in after


def events_response(node) -> tuple[list, str]:
    resp = httpx.get(node.url + "/events", timeout=10, trust_env=False)
    assert resp.status_code == 200, resp.text
    return resp.json(), resp.headers["X-Skulk-Event-Log-Mode"]


def test_event_log_counting_only_below_the_floor_then_persisting_again(cluster, models_dir):
    pytest.importorskip("skulk.runner.supervisor")
    cluster.extra_env.update({"SKULK_MODELS_DIR": str(models_dir), "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"})
    (cluster.root / "solo").mkdir(parents=True)  # the floor in the node's own skulk.yaml: PUT /config can lower it
    (cluster.root / "solo" / "skulk.yaml").write_text(f"event_log_min_free_bytes: {HUGE_FLOOR}\n")
    node = cluster.add_node("solo")
    cluster.wait_ready(node)
    resp = node.post("/place_instance", {"model_id": DEFAULT_MODEL, "min_nodes": 1})
    assert resp.status_code == 200, resp.text
    ready_instance(node, DEFAULT_MODEL, timeout=180)
    answer = chat(node, DEFAULT_MODEL, "What is the capital of France?", max_tokens=4)
    assert answer["usage"]["completion_tokens"] > 0  # serving does not need the disk
    node.post("/debug/test_events", {"count": 20, "note": "floor-"})
    wait_until(lambda: metrics(node)[("skulk_events_indexed_total", frozenset())] >= 20, 10, message="indexed")
    events, mode = events_response(node)
    assert events == [] and mode == "counting_only"  # counted, not written: GET /events thins
    diag = node.get("/v1/diagnostics/node")
    assert diag["eventLog"]["mode"] == diag["eventLog"]["apiMode"] == "counting_only"
    assert sum("counting-only" in w for w in diag["warnings"]) == 2
    samples = metrics(node)
    assert samples[("skulk_event_log_mode", frozenset({("mode", "counting_only")}))] == 1
    assert samples[("skulk_api_event_log_mode", frozenset({("mode", "counting_only")}))] == 1
    logs = node.home / "event_log"
    assert (logs / "master" / "events.bin").stat().st_size == 0 == (logs / "api" / "events.bin").stat().st_size

    # Space is back: a lower floor applies live, and the next append finds the disk fine again.
    resp = httpx.put(node.url + "/config", json={"config": {"event_log_min_free_bytes": 1}}, timeout=10,
                     trust_env=False)
    assert resp.status_code == 200 and resp.json()["requiresRestart"] is False, resp.text
    wait_until(lambda: node.get("/v1/diagnostics/node")["eventLog"]["apiMode"] == "persisting", 10)
    node.post("/debug/test_events", {"count": 5, "note": "again-"})

    def written_notes():
        events, mode = events_response(node)
        notes = [e["TestEvent"]["note"] for e in events if "TestEvent" in e]
        return mode == "persisting" and len(notes) == 5 and notes
    assert wait_until(written_notes, 10, message="events served again") == [f"again-{i}" for i in range(5)]
    assert node.get("/v1/diagnostics/node")["eventLog"]["mode"] == "persisting"
    for name in ("master", "api"):
        assert (logs / name / "events.bin").stat().st_size > 0, name
