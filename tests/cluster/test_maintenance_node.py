"""Maintenance on real nodes: cordon refuses placement with the reason, --no-worker nodes never get
shards, and drain moves a deployment off a node while a client streams through another node."""

import threading

import httpx

from skulk.testing.cluster import wait_until
from skulk.testing.serving import chat_stream

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
QUESTION = "What is the capital of France? Answer with one word."
ENV = {"SKULK_DEFAULT_MODEL__AUTO_PLACE": "false", "SKULK_SETTLE_GRACE_SECONDS": "2"}


def start(cluster, models_dir, names: list[str], no_worker: set[str]):
    cluster.extra_env.update({"SKULK_MODELS_DIR": str(models_dir), **ENV})
    nodes = []
    for name in names:
        nodes.append(cluster.add_node(name, extra_args=["--no-worker"] if name in no_worker else []))
        cluster.wait_ready(nodes[-1])
    ids = {n.name: n.get("/node_id") for n in nodes}

    def connected():
        state = nodes[0].get("/state")
        return (len(state["topology"]["nodes"]) == len(nodes) and len(state["nodeSystem"]) == len(nodes)
                and all(len(n.get("/state")["nodeMemory"]) == len(nodes) for n in nodes))
    wait_until(connected, 40, message="every node sees every node")
    return nodes, ids


def post(node, path: str, body=None) -> httpx.Response:
    return httpx.post(node.url + path, json=body or {}, timeout=15, trust_env=False)


def instance_nodes(node, dep_id: str | None = None) -> list[set[str]]:
    state = node.get("/state")
    out = []
    for tagged in state["instances"].values():
        inst = next(iter(tagged.values()))
        if dep_id is None or inst.get("deploymentId") == dep_id:
            out.append(set(inst["shardAssignments"]["nodeToRunner"]))
    return out


def test_cordon_refuses_with_the_reason_and_no_worker_nodes_never_get_shards(cluster, models_dir):
    (a, b), ids = start(cluster, models_dir, ["a", "b"], no_worker={"b"})
    assert a.get("/state")["nodeSystem"][ids["b"]]["hasWorker"] is False
    assert post(a, f"/v1/nodes/{ids['a']}/cordon").json()["maintenance"] == "cordoned"
    assert b.get("/state")["nodeMaintenance"] == {ids["a"]: "cordoned"}
    refused = post(b, "/place_instance", {"model_id": MODEL, "instance_meta": "LlamaRpc"})
    message = refused.json()["error"]["message"]
    assert refused.status_code == 400 and f"node {ids['a']} is cordoned" in message, message
    assert f"node {ids['b']} runs without a worker" in message
    previews = a.get(f"/instance/previews?model_id={MODEL}")["previews"]
    assert previews and all(p["instance"] is None and "is cordoned" in p["error"] for p in previews)
    assert post(a, "/v1/nodes/nope/cordon").status_code == 404

    assert post(b, f"/v1/nodes/{ids['a']}/uncordon").json()["cordoned"] is False
    assert post(b, "/place_instance", {"model_id": MODEL, "instance_meta": "LlamaRpc"}).status_code == 200
    wait_until(lambda: instance_nodes(a), 20, message="placed")
    previews = a.get(f"/instance/previews?model_id={MODEL}")["previews"]
    placed = [set(p["instance"][next(iter(p["instance"]))]["shardAssignments"]["nodeToRunner"])
              for p in previews if p["instance"]]
    assert placed and instance_nodes(a) == [{ids["a"]}] and all(ids["b"] not in p for p in placed)


def _stream_until(node, stop: threading.Event, results: list) -> None:
    while not stop.is_set():
        try:
            text, _ = chat_stream(node, MODEL, QUESTION, timeout=120)
            results.append(("ok", text))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
            results.append(("error", repr(exc)[:300]))


def test_drain_moves_a_deployment_off_a_node_while_a_client_streams(cluster, models_dir):
    (a, b, c), ids = start(cluster, models_dir, ["a", "b", "c"], no_worker={"c"})
    resp = post(c, "/v1/deployments", {"model_id": MODEL, "instance_meta": "LlamaRpc"})
    assert resp.status_code in (200, 201), resp.text
    dep = resp.json()["deployment_id"]
    wait_until(lambda: c.get("/state")["deployments"][dep]["status"] == "ready", 180, message="deployment ready")
    [first] = instance_nodes(c, dep)
    assert ids["c"] not in first
    drained = next(n for n in ("a", "b") if ids[n] in first)
    other = ids["b" if drained == "a" else "a"]

    stop, results = threading.Event(), []
    client = threading.Thread(target=_stream_until, args=(c, stop, results))
    client.start()
    try:
        wait_until(lambda: results, 60, message="the client streams")
        assert post(c, f"/v1/nodes/{ids[drained]}/drain").json()["draining"] is True
        wait_until(lambda: instance_nodes(c, dep) == [{other}] and
                   c.get("/state")["deployments"][dep]["status"] == "ready", 180,
                   message=f"moved off {drained}\n{a.log_tail(30)}")
        done = len(results)
        wait_until(lambda: len(results) >= done + 2, 60, message="the client streams after the move")
    finally:
        stop.set()
        client.join(150)
    errors = [r for r in results if r[0] == "error"]
    assert not errors and all("Paris" in text for _, text in results), results
    assert c.get("/state")["nodeMaintenance"] == {ids[drained]: "draining"}
    assert post(c, f"/v1/nodes/{ids[drained]}/uncordon").json()["maintenance"] is None
