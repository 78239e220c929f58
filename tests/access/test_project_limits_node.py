"""Project limits on three real nodes (the model served on one): a requests_per_minute burst through
every API node, one stream at a time under max_concurrent_requests, usage, and the audit trail."""

import json
import threading

import httpx
import pytest

from skulk.testing.cluster import LocalCluster, wait_until
from tests.serving.conftest import DEFAULT_MODEL

pytest.importorskip("skulk.runner.supervisor")
ADMIN_KEY = "sk-skulk-testadmin.Zm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc4OWFiY2RlZg"
RATE_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def nodes(tmp_path, models_dir):
    c = LocalCluster(tmp_path, extra_env={"SKULK_MODELS_DIR": str(models_dir), "SKULK_SETTLE_GRACE_SECONDS": "5",
                                          "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false",
                                          "SKULK_AUTH__ADMIN_KEY": ADMIN_KEY})
    try:
        nodes = [c.add_node(f"n{i}") for i in range(3)]
        for node in nodes:
            c.wait_ready(node)
        wait_until(lambda: all(len(call(n, "GET", "/state", ADMIN_KEY).json()["topology"]["nodes"]) == 3
                               for n in nodes), 60, interval=0.3, message="three nodes in one topology")
        wait_until(lambda: all(call(n, "GET", "/state", "sk-wrong").status_code == 401 for n in nodes), 30,
                   interval=0.3, message="the admin key holds on every node (no node is open)")
        yield nodes
    finally:
        c.stop_all()


def call(node, method, path, key, body=None, timeout=60.0) -> httpx.Response:
    return httpx.request(method, node.url + path, json=body, timeout=timeout, trust_env=False,
                         headers={"Authorization": f"Bearer {key}"})


def chat(node, key, max_tokens=4):
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": max_tokens,
            "temperature": 0}
    return call(node, "POST", "/v1/chat/completions", key, body, timeout=120)


def user_key(nodes, project: str) -> str:
    resp = call(nodes[1], "POST", "/v1/keys", ADMIN_KEY, {"name": f"{project}-user", "project": project})
    assert resp.status_code == 201, resp.text
    key = resp.json()["key"]
    wait_until(lambda: all(call(n, "GET", "/v1/models", key).status_code == 200 for n in nodes), 15,
               message="the key holds on every node")
    return key


def test_project_limits_hold_across_three_api_nodes(nodes):
    resp = call(nodes[0], "POST", "/place_instance", ADMIN_KEY, {"model_id": DEFAULT_MODEL, "min_nodes": 1})
    assert resp.status_code == 200, resp.text
    ready_instance_with_key(nodes[0])
    assert call(nodes[0], "POST", "/v1/projects", ADMIN_KEY, {"name": "burst", "requests_per_minute": 10}).status_code == 201
    assert call(nodes[2], "POST", "/v1/projects", ADMIN_KEY, {"name": "one", "max_concurrent_requests": 1}).status_code == 201
    burst, one = user_key(nodes, "burst"), user_key(nodes, "one")

    # 18 requests through 3 API nodes at once: the master admits exactly its 10
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def client(node):
        for _ in range(6):
            r = chat(node, burst)
            with lock:
                results.append(r)
    threads = [threading.Thread(target=client, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) <= 11 and codes.count(200) >= 10, codes
    refused = [r for r in results if r.status_code == 429]
    assert refused and all(all(h in r.headers for h in RATE_HEADERS) for r in refused)
    assert all(r.headers["X-RateLimit-Limit"] == "10" for r in refused)
    assert all("X-RateLimit-Remaining" in r.headers for r in results if r.status_code == 200)

    # max_concurrent_requests 1: a second stream is refused while the first runs, admitted after
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Write a long story."}],
            "max_tokens": 60, "stream": True}
    with httpx.stream("POST", nodes[1].url + "/v1/chat/completions", json=body, timeout=120, trust_env=False,
                      headers={"Authorization": f"Bearer {one}"}) as first:
        assert first.status_code == 200
        lines = first.iter_lines()
        next(line for line in lines if line.startswith("data: "))  # the first one is running
        second = chat(nodes[2], one)
        assert second.status_code == 429 and second.headers["X-RateLimit-Limit"] == "1", second.text
        for _ in lines:
            pass
    wait_until(lambda: chat(nodes[0], one).status_code == 200, 30, interval=0.5, message="room again")

    usage = call(nodes[2], "GET", "/v1/usage?project=burst", ADMIN_KEY).json()["projects"]["burst"]["1h"]  # the story above may outlast a minute
    assert usage["requests"] == codes.count(200) and usage["rejections"] == len(refused)
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0

    audit = call(nodes[0], "GET", "/v1/audit?limit=50", ADMIN_KEY)
    entries = audit.json()["data"]
    routes = [(e["method"], e["route"]) for e in entries]
    # every node's trail: the projects were made on n0 and n2, the keys on n1
    assert routes.count(("POST", "/v1/projects")) == 2 and routes.count(("POST", "/v1/keys")) == 2
    assert ("POST", "/place_instance") in routes and len({e["node_id"] for e in entries}) == 3
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    assert all(e["key_id"] == "testadmin" for e in entries), [(e["method"], e["route"], e["key_id"], e["status"]) for e in entries]
    assert ADMIN_KEY not in audit.text and burst not in audit.text and "sk-skulk-" not in json.dumps(entries)
    on_disk = (nodes[0].home / "audit.jsonl")
    assert on_disk.stat().st_mode & 0o777 == 0o600 and ADMIN_KEY not in on_disk.read_text()


def ready_instance_with_key(node):
    """ready_instance reads /state without a key; this cluster needs one."""
    def check():
        state = call(node, "GET", "/state", ADMIN_KEY).json()
        for tagged in state["instances"].values():
            (_, inst), = tagged.items()
            runners = inst["shardAssignments"]["runnerToShard"]
            names = [next(iter(state["runners"][r])) if r in state["runners"] else "missing" for r in runners]
            if all(s in ("RunnerReady", "RunnerRunning") for s in names):
                return inst
        return None
    return wait_until(check, 180, interval=0.3, message="instance ready")
