"""Deployments on real node processes over loopback, serving the default model with llama.cpp:
a cold restart of every node brings a deployment back without any call, a lost node's deployment
moves to another node, and a lease expires (after its warning) and takes the deployment with it."""

import json
import signal
import time

import pytest

from skulk.node.durable_state import FILE_NAME
from skulk.testing.cluster import LocalCluster, http, wait_until
from skulk.testing.serving import chat

pytest.importorskip("skulk.runner.supervisor")
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
LOAD_S = 120.0  # a runner start and model load on a loaded 2-core machine
NODE_TIMEOUT_S = 15  # above the 10 s between a node's info reports, or live nodes time out
SPEC = {"model_id": DEFAULT_MODEL, "instance_meta": "LlamaRpc"}


@pytest.fixture
def cluster(tmp_path, models_dir):
    c = LocalCluster(tmp_path, extra_env={"SKULK_MODELS_DIR": str(models_dir), "SKULK_SETTLE_GRACE_SECONDS": "5",
                                          "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false",
                                          "SKULK_NODE_TIMEOUT_SECONDS": str(NODE_TIMEOUT_S)})
    try:
        yield c
    finally:
        c.stop_all()


def start(cluster, names_and_args) -> list:
    nodes = []
    for name, args in names_and_args:
        nodes.append(cluster.add_node(name, extra_args=args))
        cluster.wait_ready(nodes[-1])
    first = nodes[0]

    def joined():
        state = first.get("/state")
        return len(state["topology"]["nodes"]) == len(nodes) and len(state["nodeMemory"]) == len(nodes)
    wait_until(joined, 60, message="every node in the first node's topology")
    return nodes


def deployment(node, dep_id: str, headers: dict | None = None) -> dict | None:
    resp = http().get(node.url + "/v1/deployments", headers=headers, timeout=5)
    resp.raise_for_status()
    found = [d for d in resp.json()["data"] if d["deployment_id"] == dep_id]
    return found[0] if found else None


def wait_ready(node, dep_id: str, timeout: float = LOAD_S, not_on: str | None = None, headers=None) -> dict:
    def ready():
        d = deployment(node, dep_id, headers)
        if d is None or d["status"] != "ready":
            return None
        hosts = {n["node_id"] for i in d["instances"] for n in i["nodes"]}
        return d if not_on is None or not_on not in hosts else None
    return wait_until(ready, timeout, interval=0.5, message=f"deployment {dep_id} ready\n{node.log_tail()}")


def create(node, **fields) -> str:
    resp = node.post("/v1/deployments", {**SPEC, **fields}, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()["deployment_id"]


def saved(node, dep_id: str, key_id: str) -> bool:
    path = node.home / FILE_NAME
    state = json.loads(path.read_text())["state"] if path.exists() else {}
    return dep_id in state.get("deployments", {}) and key_id in state.get("apiKeys", {})


def test_cold_restart_brings_the_deployment_back_and_serves_it(cluster):
    a, b = start(cluster, [("a", []), ("b", [])])
    dep_id = create(a)
    wait_ready(a, dep_id)
    assert chat(a, DEFAULT_MODEL, "Say hi.", max_tokens=8)["choices"][0]["message"]["content"]
    assert a.post("/v1/projects", {"name": "team", "requests_per_minute": 100}).status_code == 201
    created = a.post("/v1/keys", {"name": "ops", "role": "admin"}).json()  # from now on every call needs its key
    auth = {"Authorization": f"Bearer {created['key']}"}
    wait_until(lambda: all(saved(n, dep_id, created["id"]) for n in (a, b)), 10,
               message="both homes hold the deployment and the key")
    for node in (a, b):  # every node stopped, by its own pid
        node.kill(signal.SIGTERM)
    assert not a.alive() and not b.alive()
    for node in (a, b):
        node.start()
    for node in (a, b):
        cluster.wait_ready(node)
    d = wait_ready(a, dep_id, timeout=LOAD_S + 30, headers=auth)  # no call but polling GET since the restart
    assert d["ready_replicas"] == 1 and d["instances"][0]["ready"]
    assert http().get(b.url + "/v1/deployments", timeout=5).status_code == 401  # the key came back: auth is on
    projects = http().get(b.url + "/v1/projects", headers=auth, timeout=5).json()["data"]
    assert [p["name"] for p in projects] == ["team"] and projects[0]["requests_per_minute"] == 100
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
    resp = http().post(b.url + "/v1/chat/completions", json=body, headers=auth, timeout=LOAD_S)
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"], resp.text


def test_a_lost_nodes_deployment_is_ready_again_on_another_node(cluster):
    a, b, c = start(cluster, [("a", ["--no-worker", "--force-master"]), ("b", []), ("c", [])])
    ids = {n.get("/node_id"): n for n in (b, c)}
    dep_id = create(a)
    d = wait_ready(a, dep_id)
    [host] = {n["node_id"] for i in d["instances"] for n in i["nodes"]}
    victim = ids[host]
    killed_at = time.monotonic()
    victim.kill(signal.SIGKILL)
    # node_timeout + the reconcile interval (2 s) + a load: the done-criterion's bound
    moved = wait_ready(a, dep_id, timeout=NODE_TIMEOUT_S + 2 + LOAD_S, not_on=host)
    survivor = next(n for n in ids.values() if n is not victim)
    assert {n["node_id"] for i in moved["instances"] for n in i["nodes"]} == {survivor.get("/node_id")}
    assert time.monotonic() - killed_at < NODE_TIMEOUT_S + 2 + LOAD_S
    assert chat(a, DEFAULT_MODEL, "Say hi.", max_tokens=8)["choices"][0]["message"]["content"]


def test_a_lease_warns_then_expires_and_extend_moves_it(cluster):
    [a] = start(cluster, [("a", [])])
    dep_id = create(a, lease_seconds=20)
    first = deployment(a, dep_id)
    # the 300 s default warning is capped to the 20 s lease: the warning comes at once
    wait_until(lambda: deployment(a, dep_id)["expiry_warned"], 10, interval=0.2, message="lease expiring")
    r = a.post(f"/v1/deployments/{dep_id}/extend", {"seconds": 10})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["expires_at"] > first["expires_at"] and not moved["expiry_warned"]
    wait_until(lambda: deployment(a, dep_id)["expiry_warned"], 10, interval=0.2, message="warned again")
    gone_at = wait_until(lambda: deployment(a, dep_id) is None and time.monotonic(), 30 + 10 + 5, interval=0.5,
                         message="the deployment is gone at its lease's end")
    assert gone_at
    state = a.get("/state")
    assert not any(dep_id in json.dumps(i) for i in state["instances"].values())  # its instance went with it
