"""Failover a client never sees, on real processes: node A (API + master, no worker) and two
llama.cpp instances of the default model on B and C. Killing the node that serves a stream
mid-answer leaves the client with one uninterrupted answer, the same greedy text as undisturbed."""

import json
import signal
import time

import httpx
import pytest

from skulk.testing.cluster import wait_until
from skulk.testing.serving import chat, ready_instance, unwrap
from tests.serving.conftest import DEFAULT_MODEL

pytest.importorskip("skulk.runner.supervisor")
COUNT = "Count from 1 to 50."  # the 135M model answers "1. 1\n2. 2\n..." greedily, a few seconds long
BODY = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": COUNT}], "temperature": 0,
        "max_tokens": 100, "stream": True}


def three_nodes(cluster):
    # A long node timeout: the dead node's instance stays in the state for the whole test.
    cluster.extra_env.update({"SKULK_DEFAULT_MODEL__AUTO_PLACE": "false", "SKULK_NODE_TIMEOUT_SECONDS": "300"})
    a = cluster.add_node("a", extra_args=["--no-worker", "--force-master"])
    cluster.wait_ready(a)
    b, c = cluster.add_node("b"), cluster.add_node("c")
    for node in (b, c):
        cluster.wait_ready(node)
    ids = {node.get("/node_id"): node for node in (a, b, c)}

    def connected():
        state = a.get("/state")
        return len(state["topology"]["nodes"]) == 3 and len(state["nodeMemory"]) == 3
    wait_until(connected, 60, message="three nodes in A's topology")
    return a, ids


def place_on(api, ids, node_id) -> str:
    others = [n for n in ids if n != node_id]
    resp = api.post("/place_instance", {"model_id": DEFAULT_MODEL, "instance_meta": "LlamaRpc", "min_nodes": 1,
                                        "excluded_nodes": others}, timeout=30)
    assert resp.status_code == 200, resp.text
    def placed():
        for iid, tagged in api.get("/state")["instances"].items():
            if node_id in unwrap(tagged)[1]["shardAssignments"]["nodeToRunner"]:
                return iid
    return wait_until(placed, 30, message="instance placed")


def serving_node(api, command_id: str) -> str:
    state = api.get("/state")
    task = next(unwrap(t)[1] for t in state["tasks"].values() if unwrap(t)[1].get("commandId") == command_id)
    (node_id,) = unwrap(state["instances"][task["instanceId"]])[1]["shardAssignments"]["nodeToRunner"]
    return node_id


def stream(api, on_tokens=None, after: int = 0, times: list | None = None) -> tuple[str, list[dict]]:
    """The streamed text and any error payloads; `on_tokens(command_id)` runs once `after` pieces came.
    `times` gets each piece's arrival (monotonic)."""
    text, errors, command_id, pieces = [], [], None, 0
    with httpx.stream("POST", api.url + "/v1/chat/completions", json=BODY, timeout=120, trust_env=False) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith(": command_id "):
                command_id = line.split()[-1]
            if not line.startswith("data: {"):
                continue
            payload = json.loads(line[6:])
            if "error" in payload:
                errors.append(payload["error"])
            for choice in payload.get("choices", []):
                if choice["delta"].get("content"):
                    text.append(choice["delta"]["content"])
                    pieces += 1
                    if times is not None:
                        times.append(time.monotonic())
                    if on_tokens is not None and pieces == after:
                        on_tokens(command_id)
    return "".join(text), errors


def test_killing_the_serving_node_mid_stream_keeps_the_answer(cluster):
    api, ids = three_nodes(cluster)
    workers = [n for n, node in ids.items() if node is not api]
    for node_id in workers:
        ready_instance(api, DEFAULT_MODEL, timeout=180, instance_id=place_on(api, ids, node_id))
    reference, errors = stream(api)
    assert not errors and "5. 5" in reference  # long enough that a kill after 8 pieces lands mid-answer
    killed = []

    def kill_server(command_id):
        node_id = serving_node(api, command_id)
        ids[node_id].kill(signal.SIGKILL)
        killed.append((node_id, time.monotonic()))

    times: list[float] = []
    text, errors = stream(api, on_tokens=kill_server, after=8, times=times)
    assert killed and not ids[killed[0][0]].alive()
    assert errors == [] and text == reference
    # Noticed from the lost connection, not the master's 30 s node timeout: the answer resumes soon.
    assert times[8] - killed[0][1] < 10.0, times[8] - killed[0][1]

    # A new request once the dead node is silent goes to the live instance, not the dead one the
    # master still lists (and would pick: the first stream chose it, and it is idle again).
    dead = killed[0][0]
    wait_until(lambda: any(r["code"] == "unreachable" for r in api.get("/state")["nodeHealth"][dead]["reasons"]),
               60, message="A sees the dead node as unreachable")
    answer = chat(api, DEFAULT_MODEL, COUNT, max_tokens=8, timeout=45)["choices"][0]["message"]["content"]
    assert answer and reference.startswith(answer)
